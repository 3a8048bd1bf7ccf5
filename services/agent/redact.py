"""Secrets never reach the log: redaction of everything the agent records or logs.

:class:`Redactor` replaces, in any string and recursively in JSON-like values
(dict keys are kept, values are redacted; a value under a key that names a
secret — ``api_key``, ``password``, ``token``, ``authorization``… — is
replaced whole):

- the exact secret values it was given (the configured API key, whatever its shape);
- Anthropic-style keys (``sk-ant-…``) and other ``sk-…`` style keys;
- passwords in URLs (``scheme://user:password@host`` → ``scheme://user:***@host``);
- ``Bearer <token>`` and ``x-api-key: <key>`` header values;
- ``key=value`` / ``"key": "value"`` pairs whose key names a secret.

It is applied at every recording point (tool calls and results, ticket actions,
model requests and responses, thoughts, escalation reasons) and, through
a log-record factory (:func:`install_log_redaction`), to every log record the
agent process makes, whichever handler writes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"

_SECRET_KEY_NAMES = re.compile(
    r"(?i)^(api[-_]?key|x-api-key|apikey|password|passwd|pwd|secret|client[-_]?secret|token|access[-_]?token|"
    r"auth[-_]?token|refresh[-_]?token|authorization|private[-_]?key)$")

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # passwords in URLs: keep scheme, user and host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@'\"<>]*):([^\s@/'\"<>]+)@"), r"\1:" + MASK + "@"),
    # API keys with a recognisable prefix
    # user:password@host with no scheme (as some libraries print URLs)
    (re.compile(r"(?<![/\w:])([A-Za-z0-9_.\-]+):([^\s@/'\"<>:]+)@(?=[A-Za-z0-9_.\-]+[:/])"), r"\1:" + MASK + "@"),
    (re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{8,}"), "sk-ant-" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), "sk-" + MASK),
    # header values
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9_\-.=+/]{8,}"), r"\1 " + MASK),
    (re.compile(r"(?i)\b(x-api-key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"), r"\1" + MASK),
    # key=value and "key": "value" pairs naming a secret
    (re.compile(r"(?i)\b((?:api[-_]?key|password|passwd|secret|access[-_]?token|auth[-_]?token|token)"
                r"[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&}]+"), r"\1" + MASK),
]


class Redactor:
    """Redacts known secret values and secret-looking text. Cheap to call on every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so a secret containing another is masked whole; very short values
        # would mask ordinary words, so they are not treated as secrets
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def value(self, value: Any) -> Any:
        """``value`` with every string redacted (dicts, lists and tuples recursively)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: (MASK if isinstance(k, str) and _SECRET_KEY_NAMES.match(k) and v not in (None, "")
                        else self.value(v)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    __call__ = value


def redact_record(record: logging.LogRecord, redactor: Redactor) -> None:
    """Redact ``record``'s message and traceback in place (the traceback is folded into the message)."""
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the handler's error reporting
        return
    if record.exc_info and record.exc_info[1] is not None:
        message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
        record.exc_info, record.exc_text = None, None
    redacted = redactor.text(message)
    if redacted != message or record.args:
        record.msg, record.args = redacted, None


class _RedactingRecordFactory:
    """Wraps the process's log-record factory: every record is redacted when it is made, so
    every handler sees it redacted, including handlers added later (an SDK's own, say).
    ``extra`` fields and ``stack_info`` are not redacted: they are added after the record is made."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous
        self.redactor = Redactor()

    def add(self, secrets: Iterable[str]) -> None:
        self.redactor = Redactor([*self.redactor.secrets, *secrets])

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        redact_record(record, self.redactor)
        return record


def install_log_redaction(redactor: Redactor) -> None:
    """Redact every log record this process makes from now on (any logger, any handler), with
    ``redactor``'s secrets and patterns. Several agents in one process share one factory that
    knows all their secrets; installing again is harmless."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingRecordFactory):
        factory = _RedactingRecordFactory(factory)
        logging.setLogRecordFactory(factory)
    if not set(redactor.secrets) <= set(factory.redactor.secrets):
        factory.add(redactor.secrets)

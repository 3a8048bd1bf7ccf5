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
:class:`RedactingFilter`, to the agent process's log records.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
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


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message (and its exception text)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler
            return True
        redacted = self.redactor.text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redactor.text(text)
            record.exc_info = None
            record.msg = f"{record.msg}\n{record.exc_text}"
            record.exc_text = None
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Redact every record that reaches the root logger's handlers (this process)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redactor))

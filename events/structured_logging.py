"""Structured logging for services, subject nodes and the CLI: ``key=value`` (default) or JSON lines.

A log call names what happened in its message (constant text) and passes the facts as fields, never
inside the text::

    log.info("ticket claimed", extra={"ticket": ticket_id, "lease_s": 30})

Both formats write every field: ``key=value`` pairs after ``msg``, or keys of the JSON object (a field
that is not JSON is written as its ``str``). Field names must not be a ``LogRecord`` attribute
(``name``, ``msg``, ``args``, ``module``, ``process``...): ``logging`` refuses those.

It lives in ``events``, the bottom layer, so that every process of the lab configures its logging
the same way: services (``services.runtime``), a subject's own processes (its nodes, which may not
import ``services``) and the CLI. A process reads :class:`LogSettings` and calls
:func:`configure_logging`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a log call passed (``extra=``), in the order given."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRIBUTES and not k.startswith("_")}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        line = f"time={ts}Z level={record.levelname.lower()} logger={record.name} msg={_quote(record.getMessage())}"
        for key, value in fields(record).items():
            line += f" {key}={_quote(value if isinstance(value, str) else json.dumps(value, default=str))}"
        if record.exc_info:
            line += f" exc={_quote(self.formatException(record.exc_info))}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc |= {k: v if isinstance(v, str | int | float | bool | None) else _jsonable(v)
                for k, v in fields(record).items() if k not in doc}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def _jsonable(value: object) -> object:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def _quote(text: str) -> str:
    if text and not any(c in text for c in ' "=\n'):
        return text
    return json.dumps(text)


class LogSettings(BaseSettings):
    """How a process logs: ``OPLAB_LOG_FORMAT`` (``kv`` or ``json``; anything else is refused when
    read) and ``OPLAB_LOG_LEVEL`` (a ``logging`` level name, any case). The same variables the
    services' settings read, so one environment gives every process of a run the same lines."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")

    log_format: Literal["kv", "json"] = "kv"
    log_level: str = "INFO"


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of a log format: ``json``, or (anything else) ``key=value``; for a handler of
    one's own (a log file), so that it writes the same lines as :func:`configure_logging`."""
    return JsonFormatter() if fmt == "json" else KeyValueFormatter()


def configure_logging(fmt: str = "kv", level: str = "INFO") -> None:
    """Send every record of this process to stderr, one line each, as ``json`` or (anything else)
    ``key=value``, from ``level`` up; replaces the root logger's handlers, so calling it again
    reconfigures rather than doubling lines. NATS client chatter is kept to warnings."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("nats").setLevel(logging.WARNING)

"""Structured logging: the facts of a log call are fields in both formats, never lost in the text."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from events.structured_logging import JsonFormatter, KeyValueFormatter, LogSettings, formatter


def record(msg: str, **fields: object) -> logging.LogRecord:
    made = logging.getLogger("services.test").makeRecord("services.test", logging.INFO, __file__, 1, msg, (), None,
                                                         extra=fields)
    return made


def test_json_lines_carry_every_field_as_a_key() -> None:
    line = JsonFormatter().format(record("ticket claimed", ticket="tk-1", lease_s=30, ok=True,
                                         nodes=["node-1"], at=datetime(2026, 12, 7, tzinfo=UTC), path=Path("/x")))
    doc = json.loads(line)
    assert doc["msg"] == "ticket claimed" and doc["level"] == "info" and doc["logger"] == "services.test"
    assert (doc["ticket"], doc["lease_s"], doc["ok"], doc["nodes"]) == ("tk-1", 30, True, ["node-1"])
    assert doc["at"] == "2026-12-07 00:00:00+00:00" and doc["path"] == "/x"  # not JSON: written as text


def test_key_value_lines_append_the_fields_quoted_where_needed() -> None:
    line = KeyValueFormatter().format(record("ticket claimed", ticket="tk-1", reason="lease lost", lease_s=30))
    assert line.endswith('msg="ticket claimed" ticket=tk-1 reason="lease lost" lease_s=30'), line


def test_a_record_without_fields_is_as_before() -> None:
    line = KeyValueFormatter().format(record("started"))
    assert line.endswith("msg=started"), line
    assert set(json.loads(JsonFormatter().format(record("started")))) == {"time", "level", "logger", "msg"}


def test_the_settings_are_the_lab_environment_and_refuse_an_unknown_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_LOG_FORMAT", "json")
    monkeypatch.setenv("OPLAB_LOG_LEVEL", "debug")
    assert LogSettings().model_dump() == {"log_format": "json", "log_level": "debug"}
    assert isinstance(formatter(LogSettings().log_format), JsonFormatter)
    monkeypatch.setenv("OPLAB_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError, match="log_format"):
        LogSettings()


def test_a_configured_process_writes_one_structured_line_per_record_from_its_level() -> None:
    # a process of its own: configure_logging replaces the root handlers (pytest's capture among them)
    code = ("import logging\n"
            "from events.structured_logging import LogSettings, configure_logging\n"
            "s = LogSettings()\n"
            "configure_logging(s.log_format, s.log_level)\n"
            "log = logging.getLogger('node')\n"
            "log.debug('not shown', extra={'n': 0})\n"
            "log.warning('heartbeat failed', extra={'node': 'node-1', 'error': 'refused'})\n")
    env = {**os.environ, "OPLAB_LOG_FORMAT": "json", "OPLAB_LOG_LEVEL": "warning"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30,
                          cwd=Path(__file__).parents[2], check=True)
    docs = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(d["level"], d["logger"], d["msg"], d["node"], d["error"]) for d in docs] == [
        ("warning", "node", "heartbeat failed", "node-1", "refused")]

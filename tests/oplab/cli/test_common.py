"""What every command shares: while the console owns the terminal, logs go to a file, in the
format and from the level the environment gives every other process of the lab; listings never cut
what a reader copies."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from oplab.cli.common import log_to_file, print_listing, table


@pytest.fixture
def restored_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("restored_root_logger")
def test_the_console_log_file_is_json_when_oplab_log_format_says_so(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_LOG_FORMAT", "json")
    monkeypatch.setenv("OPLAB_LOG_LEVEL", "warning")
    path = tmp_path / "logs" / "console.log"
    log_to_file(path)
    log = logging.getLogger("console.test")
    log.info("below the level")
    log.warning("panel failed", extra={"panel": "tickets"})
    logging.getLogger().handlers[0].flush()

    lines = path.read_text().splitlines()
    assert len(lines) == 1, lines
    doc = json.loads(lines[0])
    assert doc["msg"] == "panel failed" and doc["panel"] == "tickets" and doc["level"] == "warning"


@pytest.mark.usefixtures("restored_root_logger")
def test_the_console_log_file_is_key_value_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPLAB_LOG_FORMAT", raising=False)
    monkeypatch.delenv("OPLAB_LOG_LEVEL", raising=False)
    path = tmp_path / "console.log"
    log_to_file(path)
    logging.getLogger("console.test").info("panel drawn", extra={"panel": "tickets"})
    logging.getLogger().handlers[0].flush()

    assert path.read_text().rstrip().endswith('msg="panel drawn" panel=tickets')


def test_a_listing_on_a_narrow_terminal_cuts_nothing_a_reader_copies() -> None:
    out = StringIO()
    console = Console(file=out, width=40, color_system=None)
    rows = [("r20261208t022034-7201", "2026-12-08T02:20:37", "redis_oom", "resolved by the agent after a restart")]
    print_listing(console, table(("run", "started", "fault", "note"), rows))
    text = out.getvalue()
    assert "r20261208t022034-7201" in text and "2026-12-08T02:20:37" in text and "redis_oom" in text
    assert {"resolved", "agent", "restart"} <= set(text.split())  # the last column is all there,
    assert any("restart" in line and "resolved" not in line for line in text.splitlines())  # wrapped
    assert console.width == 40  # the console is as it was

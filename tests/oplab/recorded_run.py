"""A lab home holding the recorded ``node_kill`` run (``tests/fixtures/v1-node-kill-claude.jsonl``),
imported as a user would (``oplab import``), and the ``oplab`` program run on it as a subprocess.

The run, in its imported sequences: ``run.started`` first, the fault injected, the ticket opened,
claimed, remedied and resolved, the fault reverted, ``run.finished`` - 108 events.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from events.bus import Bus
from events.settings import STREAM_NAME, BusSettings
from oplab.infra import start_nats
from tests.test_old_runs import EVENTS, FIXTURE, OPLAB, RUN

__all__ = ["EVENTS", "RUN", "imported_home", "oplab", "purge_below", "seqs_of", "served"]


def oplab(*args: str, home: Path, env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``oplab ARGS`` with ``OPLAB_HOME=home`` and none of this environment's lab settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    return subprocess.run([OPLAB, *args], env={**clean, "OPLAB_HOME": str(home), **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def imported_home(path: Path) -> Path:
    """A fresh lab home at ``path`` whose log holds only the recorded run (no ticket-log view)."""
    result = oplab("import", str(FIXTURE), "--json", home=path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["events"] == EVENTS
    return path


def seqs_of(home: Path) -> dict[str, list[int]]:
    """The run's sequences by event type, as ``oplab events RUN --json`` lists them."""
    listed = oplab("events", RUN, "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    out: dict[str, list[int]] = {}
    for line in listed.stdout.splitlines():
        doc = json.loads(line)
        out.setdefault(doc["type"], []).append(doc["seq"])
    return out


@contextmanager
def served(home: Path) -> Iterator[str]:
    """The home's NATS store served for in-process work (no CLI may run meanwhile: one server per store)."""
    server = start_nats(home / "nats")
    try:
        yield server.url
    finally:
        server.stop()


def purge_below(home: Path, seq: int) -> None:
    """Remove the home's log messages before ``seq``, as the stream's retention limits would."""
    async def purge(url: str) -> None:
        bus = await Bus.connect(BusSettings(nats_url=url), source="tests")
        try:
            await bus.js.purge_stream(STREAM_NAME, seq=seq)
        finally:
            await bus.close()

    with served(home) as url:
        asyncio.run(purge(url))

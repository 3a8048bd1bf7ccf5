"""The real recorded run (``tests/fixtures/v1-node-kill-claude.jsonl``) as replay tests use it.

A headless ``oplab demo --fault node_kill`` with the Claude policy: seven chapters from welcome to
summary, a node_kill, a ticket the agent resolves, 108 events over 12 s. :func:`file_history` reads it
as exported (stream sequences from the file); :func:`store_history` stores it on a real bus under a
fresh run id (new event ids, so the duplicate window keeps nothing out) and reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path

from console.replay import Recorded, read_history
from events import Event, decode, new_event_id
from events.bus import Bus

FIXTURE = Path(__file__).parents[1] / "fixtures" / "v1-node-kill-claude.jsonl"
EVENTS = 108


def file_history() -> list[Recorded]:
    """The run as exported: (its sequence in the original log, the event upcast to today's schema)."""
    out: list[Recorded] = []
    for line in FIXTURE.read_text().splitlines():
        doc = json.loads(line)
        event = decode(json.dumps(doc["data"]).encode())
        assert isinstance(event, Event), event
        out.append(Recorded(doc["seq"], event))
    return out


async def store_history(bus: Bus, run: str) -> list[Recorded]:
    """Publish the run's events as run ``run`` and read them back as the console does."""
    events = [r.event.model_copy(update={"run": run, "id": new_event_id()}) for r in file_history()]
    await bus.publish_batch(events)
    history = await read_history(bus, run)
    assert len(history) == EVENTS
    return history

"""A real recorded run for fold and render tests: ``tests/fixtures/v1-node-kill-claude.jsonl``.

It is a headless ``oplab demo --fault node_kill`` (auto mode, the Claude policy against the fake
Messages API) whose ticket the agent resolved; see ``tests/test_old_runs.py``. Its lines are decoded
with the codec, as any reader of an exported run does.

:func:`as_interactive` turns it into the run a presenter gets today in interactive mode: the
incident completes inside "Breaking it", and the chapter about ``stage`` starts only afterwards (when
the presenter presses space), announced with its ``about`` as today's director records it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from events import ChapterStarted, Event, decode
from events.envelope import new_event

FIXTURE = Path(__file__).parent.parent / "fixtures" / "v1-node-kill-claude.jsonl"
RUN = "r20261201t200214-278a"
TICKET = "tk-c1052318f9"
CHAPTERS = {"detection": (3, "Detection"), "remediation": (4, "Remediation"), "verification": (5, "Verification")}
TEMPLATE = "The monitor observes the cluster twice a second and opens a ticket when an invariant breaks."


def recorded_events() -> list[Event]:
    """Every event of the recorded run, in stream order."""
    out: list[Event] = []
    for line in FIXTURE.read_text().splitlines():
        event = decode(json.dumps(json.loads(line)["data"]).encode())
        assert isinstance(event, Event), event
        out.append(event)
    return out


def run_summary(events: list[Event]) -> dict[str, object]:
    """The summary the run recorded in ``run.finished`` (scored by the code of its day)."""
    return next(e.data.summary for e in events if e.type == "run.finished")  # type: ignore[attr-defined]


def as_interactive(stage: str, *, upto: str = "ticket.resolved", after_s: float = 5.0) -> list[Event]:
    """The recorded run up to its first ``upto`` event, without the chapters after "Breaking it", then
    the chapter about ``stage`` starting ``after_s`` seconds later."""
    events = recorded_events()
    cut = next(i for i, e in enumerate(events) if e.type == upto)
    kept = [e for e in events[: cut + 1]
            if not (e.type.startswith("director.chapter_") and e.data.index >= 3)]  # type: ignore[attr-defined]
    index, title = CHAPTERS[stage]
    last = kept[-1]
    chapter = new_event(ChapterStarted(scenario="ratelimiter", index=index, total=7, chapter=stage, title=title,
                                       narration=TEMPLATE, advance="space: next", about=[stage]),
                        run=last.run, source="director/test", time=last.time + timedelta(seconds=after_s))
    return [*kept, chapter]

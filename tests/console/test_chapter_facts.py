"""The story matches the facts: a chapter about an incident stage tells its facts from the log,
highlights the lines it talks about, and the incident timeline fits every layout.

The run is a real recorded one (``tests/projections/recorded.py``), re-chaptered as an interactive
presenter meets it today: the incident is over before the Detection chapter starts.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from console.layout import build_screen, render_text
from console.narration import chapter_facts
from events import Event
from projections.lab_view import LabView
from tests.projections.recorded import TEMPLATE, TICKET, as_interactive, recorded_events

WIDE, COMPACT = (200, 60), (80, 24)
SIZES = [COMPACT, WIDE]
DETECTED = f"{TICKET} opened 0.98 s after the injection: node_down on node-1"


def fold(events: list[Event]) -> LabView:
    view = LabView()
    for event in events:
        view.apply(event)
    return view


def narration_panel(lines: list[str]) -> str:
    """The rows of the narration panel: from its title to the first row of the next panel."""
    start = next(i for i, line in enumerate(lines) if "· Detection" in line or "· Remediation" in line
                 or "· Verification" in line)
    end = next(i for i in range(start + 1, len(lines)) if "Cluster" in lines[i])
    return "\n".join(lines[start:end])


def attrs_at(view: LabView, size: tuple[int, int], now: datetime, row_has: str, text: str) -> set[str | None]:
    """The display attributes of ``text`` on the first screen row containing ``row_has``."""
    canvas = build_screen(view, size, now).render(size, focus=False)
    for row in canvas.content():
        line = b"".join(run for _, _, run in row).decode()
        if row_has not in line:
            continue
        start = line.index(text)
        found: set[str | None] = set()
        pos = 0
        for attr, _, run in row:
            width = len(run.decode())
            if pos < start + len(text) and start < pos + width:
                found.add(attr)
            pos += width
        return found
    raise AssertionError(f"no row with {row_has!r}")


@pytest.mark.parametrize("size", SIZES)
def test_the_detection_chapter_shown_after_the_incident_resolved_names_the_ticket_and_its_time_to_detect(
        size: tuple[int, int]) -> None:
    events = as_interactive("detection")
    lines = render_text(fold(events), size, events[-1].time)
    panel = narration_panel(lines)
    assert DETECTED in panel
    assert "The monitor observes the cluster" in panel  # the chapter's own words follow the facts
    assert panel.index(DETECTED) < panel.index("The monitor observes")
    assert "will" not in panel.split(DETECTED)[0]


@pytest.mark.parametrize("size", SIZES)
def test_during_detection_the_tickets_line_of_the_incident_is_highlighted(size: tuple[int, int]) -> None:
    events = as_interactive("detection")
    view = fold(events)
    assert "focus" in attrs_at(view, size, events[-1].time, f"{TICKET} resolved", TICKET)
    # the same screen in a chapter about no stage highlights nothing
    plain = fold(recorded_events())
    assert "focus" not in attrs_at(plain, size, plain.now(), f"{TICKET} resolved", TICKET)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", SIZES)
def test_remediation_tells_who_claimed_the_diagnosis_and_the_action_and_highlights_the_action_step(
        size: tuple[int, int]) -> None:
    events = as_interactive("remediation")
    view = fold(events)
    now = events[-1].time
    panel = narration_panel(render_text(view, size, now))
    assert f"{TICKET} claimed by agent/vm-6717 (claude) at t+0.99" in panel
    assert "diagnosis: node-1 is down and its process is gone" in panel
    assert "restart_node(node-1) ok at t+1.95" in panel
    assert "focus" in attrs_at(view, size, now, "action executed: restart_node", "action executed")


def test_verification_highlights_the_cleared_and_resolved_moments_of_the_incident_timeline() -> None:
    events = as_interactive("verification")
    view = fold(events)
    now = events[-1].time
    panel = narration_panel(render_text(view, WIDE, now))
    assert "node_down on node-1 cleared at t+1.99" in panel
    assert f"{TICKET} resolved by agent (agent/vm-6717) at t+2.00" in panel
    assert "focus" in attrs_at(view, WIDE, now, "t+1.99 cleared node_down/node-1", "cleared")
    assert "focus" in attrs_at(view, WIDE, now, "t+2.00 resolved by agent", "resolved")
    assert "focus" not in attrs_at(view, WIDE, now, "t+0.99 claimed by", "claimed")


def test_a_chapter_shown_before_its_fact_says_what_it_waits_for_and_fills_in_when_it_arrives() -> None:
    early = as_interactive("detection", upto="chaos.fault_injected", after_s=0.01)
    view = fold(early)
    panel = narration_panel(render_text(view, COMPACT, early[-1].time))
    assert "waiting for the monitor to see an invariant break" in panel and TICKET not in panel
    rest = recorded_events()
    opened = next(i for i, e in enumerate(rest) if e.type == "ticket.opened")
    for event in rest[next(i for i, e in enumerate(rest) if e.type == "chaos.fault_injected") + 1: opened + 1]:
        if not event.type.startswith("director."):
            view.apply(event)
    panel = narration_panel(render_text(view, COMPACT, rest[opened].time))
    assert DETECTED in panel and "waiting" not in panel
    assert [f.done for f in chapter_facts(view)] == [True]


@pytest.mark.parametrize("size", [COMPACT, WIDE, (40, 12), (300, 100), (100, 30), (120, 40), (60, 15)])
def test_the_incident_timeline_fits_every_layout(size: tuple[int, int]) -> None:
    events = as_interactive("verification")
    lines = render_text(fold(events), size, events[-1].time)
    cols, rows = size
    assert len(lines) == rows
    assert all(len(line) <= cols for line in lines), [line for line in lines if len(line) > cols]
    text = "\n".join(lines)
    if size in (COMPACT, WIDE):
        assert "Incident · node_kill node-1 · " + TICKET in text
        assert "t+1.95 restart_node(node-1) ok" in text and "t+2.00 resolved by agent" in text
    if size == WIDE:  # room for every moment, one a line
        for moment in ("t+0.00 injected node_kill on node-1", "t+0.98 violation node_down/node-1",
                       f"t+0.98 ticket {TICKET} opened", "t+0.99 claimed by agent/vm-6717",
                       "t+1.99 cleared node_down/node-1"):
            assert moment in text


def test_before_any_incident_the_timeline_panel_says_so() -> None:
    events = recorded_events()
    upto = next(i for i, e in enumerate(events) if e.type == "chaos.fault_requested")
    text = "\n".join(render_text(fold(events[:upto]), COMPACT, events[upto - 1].time))
    assert "no incident yet" in text


def test_a_run_recorded_before_chapters_told_facts_shows_its_narration_as_it_was() -> None:
    events = recorded_events()
    detection = next(i for i, e in enumerate(events)
                     if e.type == "director.chapter_started" and e.data.chapter == "detection")  # type: ignore[attr-defined]
    view = fold(events[: detection + 1])
    assert chapter_facts(view) == []
    panel = narration_panel(render_text(view, COMPACT, events[detection].time))
    assert "●" not in panel and "The monitor observes the cluster twice a second." in panel
    assert TEMPLATE not in panel

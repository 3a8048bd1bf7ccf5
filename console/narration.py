"""The narration panel and what the showing chapter talks about (pure: ``now`` is always passed in).

A chapter about incident stages (``Chapter.about``) tells their facts first in
the narration panel (:func:`chapter_facts`, from the log) and highlights the
lines it talks about (:func:`chapter_focus`): its fault (injection), its ticket
(detection, verification), the agent steps and timeline moments of its stages.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import datetime

from console.format import Markup
from projections.incident import STAGES, Fact, Incident, waiting_facts
from projections.lab_view import LabView
from projections.timeline import Chapter
from subjects.contract import fmt_duration
from tickets.state import ACTIVE


def narration_title(view: LabView) -> str:
    """Title of the narration panel: ``i/N · chapter title`` (or a plain label before any chapter)."""
    ch = view.timeline.chapter
    return "Narration" if ch is None else f"{ch.number}/{ch.total} · {ch.title}"


def narration_lines(view: LabView, now: datetime, width: int, max_lines: int) -> list[Markup]:
    """The chapter's facts, its narration reflowed to ``width``, then the advance hint/countdown.

    A chapter about incident stages (``Chapter.about``) first tells their facts
    from the log (:func:`chapter_facts`): what happened and when, or what the
    stage still waits for. Single newlines in the narration are spaces; blank
    lines separate paragraphs. Never more than ``max_lines`` lines: the facts
    come first, the narration is cut (its last line ends in an ellipsis) so that
    the hint always shows.
    """
    ch = view.timeline.chapter
    width = max(1, width)
    if max_lines <= 0:
        return []
    if ch is None:
        text = ("Waiting for the director to start the scenario…" if view.events
                else f"Waiting for events of run {view.run or '?'}…")
        return [("dim", text)]
    agent_at_work = any(t.status in ACTIVE for t in view.tickets.values())
    hint = advance_hint(ch, now, agent_at_work)
    body_room = max(0, max_lines - (1 if hint else 0))
    facts = [fact_line(f) for f in chapter_facts(view)][:body_room]
    body_room -= len(facts)
    body: list[str] = []
    for para in re.split(r"\n\s*\n", ch.narration.strip()):
        if body:
            body.append("")
        body.extend(textwrap.wrap(" ".join(para.split()), width))
    if len(body) > body_room:
        body = body[:body_room]
        if body:
            last = body[-1]
            body[-1] = last[: width - 1] + "…" if len(last) >= width else last + "…"
    lines: list[Markup] = [*facts, *body]
    if hint:
        lines.append(hint)
    return lines[:max_lines]


def chapter_facts(view: LabView) -> list[Fact]:
    """The facts of the showing chapter's incident stages, in stage order (none without ``about``)."""
    ch = view.timeline.chapter
    if ch is None or not ch.about:
        return []
    incident = view.incident.current()
    out: list[Fact] = []
    for stage in STAGES:
        if stage in ch.about:
            out.extend(incident.facts(stage) if incident is not None else waiting_facts(stage))
    return out


def fact_line(fact: Fact) -> Markup:
    """A fact as a line: ``● what happened`` when done, ``… what it waits for`` otherwise."""
    return [("fact", "● "), ("fact", fact.text)] if fact.done else [("warn", "… "), ("warn", fact.text)]


# the agent timeline's step kinds (projections.lab_view.Step.kind) by the incident stage they tell
STEP_STAGE: dict[str, str] = {
    "opened": "detection",
    "claimed": "remediation", "diagnosed": "remediation", "action_requested": "remediation",
    "approval_requested": "remediation", "action_approved": "remediation", "action_rejected": "remediation",
    "action_executed": "remediation",
    "verified": "verification", "resolved": "verification", "escalated": "verification",
}


@dataclass(frozen=True, slots=True)
class Focus:
    """What the showing chapter talks about, to highlight: the incident's stages, its ticket (detection,
    verification), its fault (injection) and the agent steps of those stages."""

    stages: frozenset[str] = frozenset()
    ticket: str | None = None
    fault: str | None = None
    step_kinds: frozenset[str] = frozenset()


def chapter_focus(view: LabView) -> Focus:
    """The :class:`Focus` of the showing chapter (nothing to highlight without ``about``)."""
    ch = view.timeline.chapter
    if ch is None or not ch.about:
        return Focus()
    stages = frozenset(ch.about)
    incident = view.incident.current()
    ticket = incident.ticket_id if incident is not None and stages & {"detection", "verification"} else None
    fault = incident.fault_id if incident is not None and "injection" in stages else None
    kinds = frozenset(k for k, stage in STEP_STAGE.items() if stage in stages)
    return Focus(stages=stages, ticket=ticket, fault=fault, step_kinds=kinds)


def is_incident_ticket(view: LabView, ticket_id: str) -> bool:
    """Whether ``ticket_id`` is the ticket of the latest incident (the one a chapter talks about)."""
    incident: Incident | None = view.incident.current()
    return incident is not None and incident.ticket_id == ticket_id


def advance_hint(ch: Chapter, now: datetime, agent_at_work: bool = False) -> Markup | None:
    """How the chapter ends: its advance condition and countdown, or how it finished (``None``: nothing to say)."""
    bits: list[Markup] = []
    if ch.finished_at is not None:
        bits.append(("dim", f"chapter finished ({ch.finish_reason})"))
    else:
        if ch.advance:
            bits.append(("hint", f"▶ {ch.advance}"))
        remaining = ch.remaining_s(now)
        if remaining is not None:
            # past its timeout a chapter waits while an agent holds a ticket (the director's rule)
            wait = "waiting for the agent" if remaining <= 0 and agent_at_work else f"next in {fmt_duration(remaining)}"
            bits.append(("warn", f"{'  ' if bits else ''}{wait}"))
    return bits or None

"""What a run report shows, folded from one run's events: the run, its workload over time, its
incidents (:class:`projections.incident.IncidentTimeline`), each ticket's story, the operator's
transcript (:mod:`oplab.reports.transcript`) and its score (:class:`projections.scores.TrialScorer`).

:func:`fold_run` is pure: events in log order in, :class:`RunFacts` out; every time comes from the
envelopes, so a report of a stored run is the same every time it is made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events import Event, RunFinished, RunStarted, WorkloadStats
from events.catalogue import ticket
from oplab.reports.document import abridge
from oplab.reports.transcript import Session, TranscriptFold, result_text
from projections.incident import Incident, IncidentTimeline
from projections.run_fold import RunFold
from projections.scores import TrialScore, TrialScorer
from projections.text import call_text, stamp

EVIDENCE_CHARS = 500


@dataclass(frozen=True, slots=True)
class WorkloadPoint:
    """One ``workload.stats`` interval's counts, at its envelope time (the interval's end)."""

    at: datetime
    interval_s: float
    ok: int
    rejected: int
    errors: int


@dataclass(frozen=True, slots=True)
class StoryLine:
    """One step of a ticket's story: what happened and the detail that matters (evidence, result)."""

    at: datetime
    what: str
    detail: str = ""
    ok: bool | None = None


@dataclass(slots=True)
class TicketStory:
    """One ticket of the run, told step by step from its ``ticket.*`` events; ``status`` is where
    the story ended (``open`` if the log ends first)."""

    ticket_id: str
    invariant: str
    entity: str
    opened_at: datetime
    lines: list[StoryLine] = field(default_factory=list)
    status: str = "open"


@dataclass(slots=True)
class RunFacts:
    """Everything a run report shows, from one run's events: what it played (from ``run.started``),
    how it ended (``run.finished``; None while unfinished), the workload, incidents, ticket stories,
    operator sessions and the score. ``first_at``/``last_at``: the run's first and last event times;
    ``events``: how many it has."""

    run: str
    first_at: datetime
    last_at: datetime
    subject: str | None = None
    scenario: str | None = None
    requested_fault: str | None = None
    outcome: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    workload: list[WorkloadPoint] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    tickets: list[TicketStory] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    score: TrialScore | None = None
    events: int = 0

    @property
    def origin(self) -> datetime:
        """Time zero of the report: the first fault's injection, else the run's first event."""
        first = next((i for i in self.incidents if i.fault_id is not None), None)
        return first.origin if first is not None else self.first_at

    @property
    def injected(self) -> bool:
        return any(i.fault_id is not None for i in self.incidents)

    def offset_s(self, at: datetime) -> float:
        return (at - self.origin).total_seconds()

    def stamp(self, at: datetime) -> str:
        """``t+0.58`` from :attr:`origin`, as the incident timeline writes it."""
        return stamp(self.offset_s(at))


def _json(value: Any, limit: int = EVIDENCE_CHARS) -> str:
    return abridge(json.dumps(value, default=str, separators=(", ", ": ")), limit) if value else ""


class _Stories(RunFold):
    """Each ticket's story from its ``ticket.*`` events."""

    def __init__(self, run: str | None = None) -> None:
        super().__init__(run)
        self.tickets: dict[str, TicketStory] = {}
        self._calls: dict[str, str] = {}
        self.handlers |= {
            ticket.TicketOpened.TYPE: self._opened, ticket.TicketRecurred.TYPE: self._recurred,
            ticket.TicketClaimed.TYPE: self._claimed, ticket.TicketDiagnosed.TYPE: self._diagnosed,
            ticket.TicketActionRequested.TYPE: self._requested, ticket.TicketActionApproved.TYPE: self._approved,
            ticket.TicketActionRejected.TYPE: self._rejected, ticket.TicketActionExecuted.TYPE: self._executed,
            ticket.TicketVerified.TYPE: self._verified, ticket.TicketResolved.TYPE: self._resolved,
            ticket.TicketEscalated.TYPE: self._escalated, ticket.TicketReopened.TYPE: self._reopened,
        }

    def _line(self, ticket_id: str, line: StoryLine, status: str | None = None) -> None:
        story = self.tickets.get(ticket_id)
        if story is not None:
            story.lines.append(line)
            story.status = status or story.status

    def _opened(self, p: ticket.TicketOpened, at: datetime) -> None:
        self.tickets.setdefault(p.ticket_id, TicketStory(p.ticket_id, p.invariant, p.entity, at))
        self._line(p.ticket_id, StoryLine(at, f"opened: {p.invariant} on {p.entity}",
                                          p.summary + (f"\nevidence: {_json(p.evidence)}" if p.evidence else "")))

    def _recurred(self, p: ticket.TicketRecurred, at: datetime) -> None:
        self._line(p.ticket_id, StoryLine(at, "the violation recurred", _json(p.evidence)))

    def _claimed(self, p: ticket.TicketClaimed, at: datetime) -> None:
        self._line(p.ticket_id, StoryLine(at, f"claimed by {p.agent} ({p.policy})"), "claimed")

    def _diagnosed(self, p: ticket.TicketDiagnosed, at: datetime) -> None:
        self._line(p.ticket_id, StoryLine(at, "diagnosis", p.hypothesis
                                          + (f"\nevidence: {_json(p.evidence)}" if p.evidence else "")))

    def _requested(self, p: ticket.TicketActionRequested, at: datetime) -> None:
        call = call_text(p.tool, p.args, limit=None)
        self._calls[p.action_id] = call
        if p.awaiting_approval:
            self._line(p.ticket_id, StoryLine(at, f"asked for approval: {call}"))

    def _approved(self, p: ticket.TicketActionApproved, at: datetime) -> None:
        self._line(p.ticket_id, StoryLine(at, f"approved by {p.by}: {self._calls.get(p.action_id, p.action_id)}",
                                          ok=True))

    def _rejected(self, p: ticket.TicketActionRejected, at: datetime) -> None:
        self._line(p.ticket_id, StoryLine(at, f"rejected by {p.by}: {self._calls.get(p.action_id, p.action_id)}",
                                          p.reason, ok=False))

    def _executed(self, p: ticket.TicketActionExecuted, at: datetime) -> None:
        call = call_text(p.tool, p.args, limit=None)
        self._line(p.ticket_id, StoryLine(at, f"action {call}: {'ok' if p.ok else 'FAILED'}",
                                          f"result: {result_text(p.result)}" if p.result is not None else "",
                                          ok=p.ok))

    def _verified(self, p: ticket.TicketVerified, at: datetime) -> None:
        self._line(p.ticket_id, StoryLine(at, "verified: the violation cleared after the remedy", _json(p.evidence),
                                          ok=True))

    def _resolved(self, p: ticket.TicketResolved, at: datetime) -> None:
        who = p.by + (f" ({p.agent})" if p.agent else "")
        self._line(p.ticket_id, StoryLine(at, f"resolved by {who}", p.note, ok=True), "resolved")

    def _escalated(self, p: ticket.TicketEscalated, at: datetime) -> None:
        self._line(p.ticket_id, StoryLine(at, "escalated" + (f" by {p.agent}" if p.agent else ""), p.reason,
                                          ok=False), "escalated")

    def _reopened(self, p: ticket.TicketReopened, at: datetime) -> None:
        self._line(p.ticket_id, StoryLine(at, "reopened", p.reason), "open")


def workload_point(stats: WorkloadStats, at: datetime) -> WorkloadPoint:
    """The interval's counts (:meth:`WorkloadStats.totals`: the operations', the nodes' when there are none)."""
    totals = stats.totals()
    return WorkloadPoint(at, stats.interval_s, totals.ok, totals.rejected, totals.errors)


def rates(points: Sequence[WorkloadPoint], window_s: float = 1.0) -> list[tuple[datetime, float, float, float]]:
    """(time, ok/s, rejected/s, errors/s) at each point over a trailing window of about ``window_s``:
    the counts of the intervals that ended within it divided by their summed length. A loader that
    reports every 0.25 s sends a handful of requests per interval, so a rate per interval is noise."""
    out = []
    for i, point in enumerate(points):
        chosen = [q for q in points[: i + 1] if (point.at - q.at).total_seconds() < window_s]
        span = sum(q.interval_s for q in chosen) or 1.0
        out.append((point.at, sum(q.ok for q in chosen) / span, sum(q.rejected for q in chosen) / span,
                    sum(q.errors for q in chosen) / span))
    return out


def fold_run(events: Iterable[Event], run: str | None = None, *, control: bool | None = None) -> RunFacts | None:
    """The report's facts about ``run`` (the first event's run when None); None for no events."""
    incidents = IncidentTimeline(run)
    scorer = TrialScorer(run, control=control)
    transcript = TranscriptFold(run)
    stories = _Stories(run)
    facts: RunFacts | None = None
    for event in events:
        if run is None:
            run = event.run
        if event.run != run:
            continue
        if facts is None:
            facts = RunFacts(run=run, first_at=event.time, last_at=event.time)
        facts.events += 1
        facts.first_at, facts.last_at = min(facts.first_at, event.time), max(facts.last_at, event.time)
        incidents.apply(event)
        scorer.apply(event)
        transcript.apply(event)
        stories.apply(event)
        data = event.data
        if isinstance(data, WorkloadStats):
            facts.workload.append(workload_point(data, event.time))
        elif isinstance(data, RunStarted):
            facts.subject, facts.scenario, facts.requested_fault = data.subject, data.scenario, data.fault
        elif isinstance(data, RunFinished):
            facts.outcome, facts.summary = data.outcome, dict(data.summary)
    if facts is None:
        return None
    facts.incidents = list(incidents.incidents)
    facts.tickets = sorted(stories.tickets.values(), key=lambda t: t.opened_at)
    facts.sessions = list(transcript.sessions)
    facts.score = scorer.score()
    return facts

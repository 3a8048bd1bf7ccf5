"""The run timeline: one run's story folded from its events, and its scored summary.

:class:`RunTimeline` is a pure, in-memory fold (``apply(event)``, no I/O) over the
events of one run. It knows when the run started and finished, which director
chapter is showing, every fault's life (folded by :mod:`projections.faults`, where the
rule of which faults are active is), which invariants are violated right now, and the
run's incident.

:meth:`RunTimeline.summary` returns the :class:`RunSummary` that
``oplab demo --headless`` prints as its final JSON line (and the director records
in ``run.finished.summary``). Every figure in it is computed from envelope ``time``
values in the log, never from a wall clock, so re-folding a stored run gives the
same summary. The incident - its fault, ticket, TTD, TTM, who resolved it, the
actions after the fault - is the one judgement of :mod:`projections.incident_verdict`
that the trial score (:mod:`projections.scores`) reads too, so a run's summary and
its score never differ on them. The fields:

- ``fault``: the kind of the incident's fault: the first injection (by time) of the
  kind ``run.started`` named (noise may be injected beside it, even first), else the
  first injection. If no fault was ever injected, the kind first requested (or the
  one ``run.started`` named) and ``outcome == "not_injected"`` (a fault was asked
  for and never got in: a failure, not a clean pass); ``"no_fault"`` only when no
  fault was named or requested at all.
- ``ticket``: the first ticket opened (by its ``ticket.opened`` time) at or after
  that injection.
- ``ttd_s`` = ``ticket.opened.time - chaos.fault_injected.time``.
- ``ttm_s`` = the time the ticket's (invariant, entity) was recorded cleared
  (``inv.cleared``) at or after the first successful mutating action on the ticket
  began, with no revert of the fault that changed something at or before that clear,
  minus ``ticket.opened.time``; ``None`` while it is not mitigated (not cleared yet,
  no successful action before the clear, or the undo cleared it).
- ``outcome``: ``"resolved"`` / ``"escalated"`` / ``"open"`` from the ticket's
  last status (a reopened ticket is open again); ``"undetected"`` when a fault
  was injected but no ticket followed. (For a control run the director records
  :meth:`RunSummary.finished_outcome`: ``no_action`` / ``false_positive``.)
- ``resolved_by``: ``"agent"`` when the agent resolved the ticket and no revert of
  the fault (for any reason: TTL, the lab going down, by hand) that changed something
  - any of them, not only the last - came at or before the moment the violation cleared
  (or, with no clear on record, the ticket was resolved); ``"self-healed"`` when the
  monitor resolved it, or such a revert did: the undo fixed it, not the agent. A revert
  that found nothing to undo (``changed`` False) fixed nothing and does not count.
- ``tickets_after_fault``: tickets opened at or after the injection;
  ``actions_after_fault``: mutating actions executed at or after it, on any ticket;
  ``open_tickets``: tickets of the run neither resolved nor escalated.

A run succeeds (:func:`summary_succeeded`, the headless demo's exit status) exactly
when its trial score does: an incident mitigated and resolved by the agent, a control
with no mutating action after the injection.

Durations are rounded to milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from events import (
    ChapterFinished,
    ChapterStarted,
    Event,
    InvariantCleared,
    InvariantViolated,
    RunFinished,
    RunStarted,
    ScenarioRestarted,
)
from projections.faults import ACTIVE_FAULT_STATUSES, FAULT_EVENTS, FaultFold, FaultLife, FaultStatus
from projections.incident_verdict import SUCCESS, IncidentFold, control_verdict

log = logging.getLogger(__name__)

Outcome = Literal["resolved", "escalated", "open", "undetected", "not_injected", "no_fault"]

__all__ = ["ACTIVE_FAULT_STATUSES", "Chapter", "Fault", "FaultStatus", "RunSummary", "RunTimeline", "Violation",
           "summary_succeeded"]

Fault = FaultLife
"""One fault's life: :class:`projections.faults.FaultLife`, where the rule of which faults are active is."""


@dataclass(slots=True)
class Chapter:
    """A director chapter as announced by ``director.chapter_started`` (``index`` 0-based)."""

    scenario: str
    index: int
    total: int
    chapter: str
    title: str
    narration: str
    advance: str
    timeout_s: float | None
    started_at: datetime
    finished_at: datetime | None = None
    finish_reason: str | None = None
    about: tuple[str, ...] = ()  # incident stages it tells (see projections.incident)

    @property
    def number(self) -> int:
        """1-based position for display (``index`` is 0-based, as the director sends it)."""
        return self.index + 1

    def deadline(self) -> datetime | None:
        """When the chapter times out (auto mode), or None if it has no timeout."""
        if self.timeout_s is None:
            return None
        return self.started_at + timedelta(seconds=self.timeout_s)

    def remaining_s(self, now: datetime) -> float | None:
        """Seconds left before the chapter's timeout (never negative), or None."""
        deadline = self.deadline()
        if deadline is None or self.finished_at is not None:
            return None
        return max(0.0, (deadline - now).total_seconds())


@dataclass(slots=True)
class Violation:
    """An invariant broken for one entity, from ``inv.violated`` until ``inv.cleared``."""

    invariant: str
    entity: str
    first_seen: datetime
    at: datetime
    summary: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


class RunSummary(BaseModel):
    """The scored result of one run (see the module docstring for every rule).

    The first seven fields are the headless demo's contract; the rest add
    context. :func:`summary_succeeded` is what decides the demo's exit status.
    """

    model_config = ConfigDict(frozen=True)

    run: str
    fault: str | None
    ticket: str | None
    outcome: Outcome
    resolved_by: str | None
    ttd_s: float | None
    ttm_s: float | None
    scenario: str | None = None
    fault_id: str | None = None
    target: str | None = None
    invariant: str | None = None
    entity: str | None = None
    agent: str | None = None
    fault_reverted: str | None = None
    tickets_after_fault: int = 0
    actions_after_fault: int = 0
    open_tickets: int = 0

    @property
    def agent_resolved(self) -> bool:
        """True only if the ticket was resolved and the agent, not a fault's revert, fixed it."""
        return self.outcome == "resolved" and self.resolved_by == "agent"

    def finished_outcome(self, control: bool) -> str:
        """The outcome ``run.finished`` records: for a control run whose fault got in, its verdict
        (:func:`~projections.incident_verdict.control_verdict`: ``no_action`` / ``false_positive``,
        as the trial score judges it); for any other run, :attr:`outcome`."""
        if control and self.outcome not in ("not_injected", "no_fault"):  # a burst that never ran proves nothing
            return control_verdict(self.actions_after_fault)
        return self.outcome


def summary_succeeded(summary: Mapping[str, Any]) -> bool:
    """Whether a run's summary (``run.finished.summary``: :class:`RunSummary`'s fields, the outcome
    the director recorded, ``control``) is a success - the same success as the run's trial score
    (:data:`~projections.incident_verdict.SUCCESS`): a control run with no mutating action after its
    injection (``no_action``); an incident mitigated (a TTM) and resolved by the agent."""
    if summary.get("control"):
        return summary.get("outcome") in SUCCESS  # the control's verdict, no_action or false_positive
    return (summary.get("outcome") == "resolved" and summary.get("resolved_by") == "agent"
            and summary.get("ttm_s") is not None)


class RunTimeline:
    """Pure fold of one run's events. Call :meth:`apply` in log order; read attributes.

    Events of other runs are ignored when ``run`` is given (the first event
    fixes it otherwise). Unknown event types are ignored. ``apply`` never
    raises on a well-formed :class:`~events.Event`.
    """

    def __init__(self, run: str | None = None) -> None:
        self.run: str | None = run
        self.scenario: str | None = None
        self.subject: str | None = None
        self.requested_fault: str | None = None
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.run_outcome: str | None = None
        self.first_time: datetime | None = None
        self.last_time: datetime | None = None
        self.chapter: Chapter | None = None
        self.chapters_started: int = 0
        self.fault_fold = FaultFold(run)  # every fault's life, by the one rule (projections.faults)
        self.faults: dict[str, Fault] = self.fault_fold.faults  # the fold's own, kept up to date by it
        self.violations: dict[tuple[str, str], Violation] = {}
        self._incident = IncidentFold(run)  # the run's incident, judged as the trial score judges it
        self._handlers: dict[str, Callable[[Any, datetime], None]] = {
            RunStarted.TYPE: self._run_started,
            RunFinished.TYPE: self._run_finished,
            ChapterStarted.TYPE: self._chapter_started,
            ChapterFinished.TYPE: self._chapter_finished,
            ScenarioRestarted.TYPE: self._scenario_restarted,
            **{kind: self._fault for kind in FAULT_EVENTS},
            InvariantViolated.TYPE: self._violated,
            InvariantCleared.TYPE: self._cleared,
        }

    # -- folding ------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Fold one event. Returns True if it belonged to this run (and was looked at)."""
        if self.run is None:
            self.run = event.run
        elif event.run != self.run:
            return False
        at = event.time
        if self.first_time is None:
            self.first_time = at
        if self.last_time is None or at > self.last_time:
            self.last_time = at
        handler = self._handlers.get(event.type)
        if handler is not None:
            handler(event.data, at)
        self._incident.apply(event)
        return True

    def _run_started(self, p: RunStarted, at: datetime) -> None:
        self.scenario = p.scenario
        self.subject = p.subject
        self.requested_fault = p.fault
        self.started_at = at

    def _run_finished(self, p: RunFinished, at: datetime) -> None:
        self.finished_at = at
        self.run_outcome = p.outcome

    def _chapter_started(self, p: ChapterStarted, at: datetime) -> None:
        self.scenario = self.scenario or p.scenario
        self.chapters_started += 1
        self.chapter = Chapter(
            scenario=p.scenario, index=p.index, total=p.total, chapter=p.chapter, title=p.title,
            narration=p.narration, advance=p.advance, timeout_s=p.timeout_s, started_at=at,
            about=tuple(p.about),
        )

    def _chapter_finished(self, p: ChapterFinished, at: datetime) -> None:
        ch = self.chapter
        if ch is not None and ch.index == p.index and ch.chapter == p.chapter:
            ch.finished_at = at
            ch.finish_reason = p.reason

    def _scenario_restarted(self, p: ScenarioRestarted, at: datetime) -> None:
        self.chapter = None

    def _fault(self, p: Any, at: datetime) -> None:
        self.fault_fold.fold(p, at)

    def _violated(self, p: InvariantViolated, at: datetime) -> None:
        self.violations[(p.invariant, p.entity)] = Violation(
            invariant=p.invariant, entity=p.entity, first_seen=p.first_seen, at=at,
            summary=p.summary, evidence=dict(p.evidence),
        )

    def _cleared(self, p: InvariantCleared, at: datetime) -> None:
        self.violations.pop((p.invariant, p.entity), None)

    # -- reading ------------------------------------------------------------

    @property
    def active_faults(self) -> list[Fault]:
        """Faults in effect right now (:mod:`projections.faults`: injected, not reverted), oldest first."""
        return self.fault_fold.active()

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def elapsed_s(self, now: datetime) -> float:
        """Seconds since the run started (or its first event), up to ``now`` or its end."""
        start = self.started_at or self.first_time
        if start is None:
            return 0.0
        end = self.finished_at or now
        return max(0.0, (end - start).total_seconds())

    def first_injected_fault(self) -> Fault | None:
        """The fault injected first (by time), of any kind: noise too (the incident's is :meth:`summary`'s)."""
        injected = [f for f in self.faults.values() if f.injected_at is not None]
        return min(injected, key=lambda f: f.injected_at) if injected else None  # type: ignore[arg-type,return-value]

    def summary(self) -> RunSummary:
        """Score the run from what has been folded so far (rules in the module docstring)."""
        run = self.run or ""
        incident = self._incident.judge(self.requested_fault)
        if incident is None:
            requested = next(iter(self.faults.values()), None)
            kind = requested.kind if requested is not None else self.requested_fault
            return RunSummary(run=run, fault=kind, ticket=None, outcome="no_fault" if kind is None else "not_injected",
                              resolved_by=None, ttd_s=None, ttm_s=None, scenario=self.scenario)
        tickets = self._incident.tickets.by_id.values()
        base: dict[str, Any] = {
            "run": run, "fault": incident.injection.kind, "scenario": self.scenario,
            "fault_id": incident.injection.fault_id, "target": incident.injection.target,
            "fault_reverted": incident.reverted, "tickets_after_fault": incident.tickets_after,
            "actions_after_fault": len(incident.actions),
            "open_tickets": sum(1 for t in tickets if t.status not in ("resolved", "escalated")),
        }
        ticket = incident.ticket
        if ticket is None:
            return RunSummary(**base, ticket=None, outcome="undetected", resolved_by=None,
                              ttd_s=None, ttm_s=None)
        outcome: Outcome = ticket.status if ticket.status in ("resolved", "escalated") else "open"  # type: ignore[assignment]
        resolved_by = incident.resolution if incident.resolution in ("agent", "self-healed") else None
        return RunSummary(
            **base, ticket=ticket.ticket_id, outcome=outcome, resolved_by=resolved_by,
            ttd_s=incident.ttd_s, ttm_s=incident.ttm_s,
            invariant=ticket.invariant, entity=ticket.entity, agent=ticket.agent,
        )

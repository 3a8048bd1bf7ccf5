"""The incident timeline: what happened to a fault, from injection to resolution, folded from the log.

:class:`IncidentTimeline` is a pure, in-memory fold (``apply(event)``, no I/O,
no clock) over one run's events. It needs no director: a run whose fault was
injected by hand (``oplab chaos inject``) has the same timeline as a scenario's.

An :class:`Incident` starts with each ``chaos.fault_injected`` (its origin, t+0);
the first ticket opened after that injection, in log order, is *its* ticket; the
first ``inv.cleared`` of that ticket's (invariant, entity) at or after the ticket
opened is its clearing. This is the presenter's telling of every incident of a
run; the run's figures (which incident is scored, its TTM) are judged once, by
:mod:`projections.incident_verdict`, and can differ from it when a run has noise
faults or a violation that flaps clear before the remedy. A ticket opened when no
incident is waiting for one, and the last incident is over (its ticket closed, its
fault no longer active by the rule of :mod:`projections.faults`: reverted), starts an incident of
its own, without a fault: its origin is when the violation behind it was recorded.
A second ticket opened while an incident is still going (another symptom of the
same fault) is counted in ``Incident.other_tickets``, not told.

Every figure comes from envelope ``time`` values in the log, relative to the
incident's origin (:meth:`Incident.offset_s`), so re-folding a stored run gives
the same timeline. The fault's kind may appear: this is the presenter's view,
never a model's prompt.

Stages group the moments of an incident the way a scenario's chapters talk
about them (``about:`` in a scenario, ``director.chapter_started.about``):
``injection`` (injected, reverted), ``detection`` (violation, ticket opened),
``remediation`` (claimed, diagnosed, actions and approvals) and
``verification`` (cleared, resolved, escalated, reopened). :meth:`Incident.facts`
tells one stage in words - what happened, or what it is waiting for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from events.catalogue import chaos, inv, ticket
from projections.faults import FAULT_EVENTS, FaultFold, FaultLife
from projections.run_fold import RunFold
from projections.text import abridge, secs, stamp

Stage = Literal["injection", "detection", "remediation", "verification"]
STAGES: tuple[Stage, ...] = get_args(Stage)

Kind = Literal["injected", "reverted", "violated", "opened", "claimed", "diagnosed", "approval_requested",
               "approved", "rejected", "action", "cleared", "resolved", "escalated", "reopened"]

STAGE_OF: dict[Kind, Stage] = {
    "injected": "injection", "reverted": "injection",
    "violated": "detection", "opened": "detection",
    "claimed": "remediation", "diagnosed": "remediation", "approval_requested": "remediation",
    "approved": "remediation", "rejected": "remediation", "action": "remediation",
    "cleared": "verification", "resolved": "verification", "escalated": "verification",
    "reopened": "verification",
}

TEXT_CHARS = 70


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of an incident's timeline: when (log time), what kind, a short text and a
    briefer one (for a timeline flowed into a narrow panel; the text when empty).

    ``ok`` is True for a success (an action that worked, a resolution), False
    for a failure (a failed action, a rejection, an escalation), None otherwise.
    """

    at: datetime
    kind: Kind
    text: str
    ok: bool | None = None
    brief: str = ""

    @property
    def short(self) -> str:
        return self.brief or self.text

    @property
    def stage(self) -> Stage:
        return STAGE_OF[self.kind]


@dataclass(frozen=True, slots=True)
class Fact:
    """One sentence about a stage: ``done`` when it tells what happened, False when it says what
    the stage is still waiting for."""

    text: str
    done: bool


def _call(tool: str, args: dict[str, Any]) -> str:
    """``restart_node(node-1)``: arguments by value only, for a narrow line (the compact panel's brief
    texts and the facts): shorter on purpose than :func:`projections.text.call_text`'s named arguments."""
    inner = ", ".join(v if isinstance(v, str) else json.dumps(v, default=str) for v in args.values())
    return abridge(f"{tool}({inner})", 48)


@dataclass(slots=True)
class Incident:
    """One fault's story (or one ticket's, for an incident without a fault); see the module doc.

    Attributes are facts as folded so far; None means "not yet".
    """

    origin: datetime
    fault_id: str | None = None
    fault_kind: str | None = None
    target: str | None = None
    reverted_at: datetime | None = None
    revert_reason: str | None = None
    ticket_id: str | None = None
    invariant: str | None = None
    entity: str | None = None
    opened_at: datetime | None = None
    claimed_at: datetime | None = None
    agent: str | None = None
    policy: str | None = None
    diagnosis: str | None = None
    awaiting: dict[str, str] = field(default_factory=dict)  # action id -> call, waiting for a human
    actions: list[tuple[datetime, str, bool]] = field(default_factory=list)  # executed: (at, call, ok)
    cleared_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolver: str | None = None
    escalated_at: datetime | None = None
    escalation: str | None = None
    other_tickets: int = 0
    violations: set[tuple[str, str]] = field(default_factory=set)  # (invariant, entity) told so far
    moments: list[Moment] = field(default_factory=list)
    fault: FaultLife | None = field(default=None, repr=False, compare=False)  # its life (projections.faults)

    def offset_s(self, at: datetime) -> float:
        """Seconds from the incident's origin (the injection) to ``at``."""
        return (at - self.origin).total_seconds()

    def stamp(self, at: datetime) -> str:
        """``t+0.58`` (``t-0.10`` for something recorded before the origin)."""
        return stamp(self.offset_s(at))

    @property
    def closed(self) -> bool:
        """Its ticket was resolved or escalated (and not reopened since)."""
        return self.resolved_at is not None or self.escalated_at is not None

    @property
    def fault_active(self) -> bool:
        """Its fault is still in effect, by the one rule of :mod:`projections.faults` (injected, not
        reverted: a failure does not end it)."""
        return self.fault is not None and self.fault.active

    def add(self, at: datetime, kind: Kind, text: str, ok: bool | None = None, brief: str = "") -> None:
        self.moments.append(Moment(at, kind, text, ok, brief))

    def timeline(self) -> list[Moment]:
        """The moments in log-time order (ties in the order they were folded)."""
        return sorted(self.moments, key=lambda m: m.at)

    # -- in words -------------------------------------------------------------------------------

    def facts(self, stage: Stage) -> list[Fact]:
        """What ``stage`` is about, as sentences: what happened, else what it waits for."""
        return {"injection": self._injection, "detection": self._detection,
                "remediation": self._remediation, "verification": self._verification}[stage]()

    def _injection(self) -> list[Fact]:
        if self.fault_id is None:
            return [Fact(f"no fault was injected: this incident began with {self.invariant} "
                         f"on {self.entity}", True)]
        out = [Fact(f"{self.fault_kind} injected on {self.target} at {self.origin:%H:%M:%S} "
                    f"({self.stamp(self.origin)})", True)]
        if self.reverted_at is not None:
            out.append(Fact(f"fault reverted ({self.revert_reason}) at {self.stamp(self.reverted_at)}", True))
        return out

    def _detection(self) -> list[Fact]:
        if self.opened_at is None:
            seen = [m for m in self.moments if m.kind == "violated"]
            if seen:
                return [Fact(f"{seen[0].text} at {self.stamp(seen[0].at)}", True),
                        Fact("waiting for the monitor to open a ticket", False)]
            return [Fact("waiting for the monitor to see an invariant break", False)]
        after = "after the injection" if self.fault_id is not None else "after the violation"
        out = [Fact(f"{self.ticket_id} opened {secs(self.offset_s(self.opened_at))} {after}: "
                    f"{self.invariant} on {self.entity}", True)]
        if self.other_tickets:
            out.append(Fact(f"{self.other_tickets} more ticket(s) opened for other symptoms", True))
        return out

    def _remediation(self) -> list[Fact]:
        if self.ticket_id is None:
            return [Fact("waiting for a ticket to work on", False)]
        if self.claimed_at is None:
            if self.escalated_at is not None:
                return [Fact(f"escalated before anyone claimed it: {abridge(self.escalation or '', TEXT_CHARS)}",
                             False)]
            return [Fact(f"waiting for an agent to claim {self.ticket_id}", False)]
        out = [Fact(f"{self.ticket_id} claimed by {self.agent} ({self.policy}) at {self.stamp(self.claimed_at)}",
                    True)]
        if self.diagnosis is not None:
            out.append(Fact(f"diagnosis: {abridge(self.diagnosis, TEXT_CHARS)}", True))
        for at, call, ok in self.actions:
            out.append(Fact(f"{call} {'ok' if ok else 'FAILED'} at {self.stamp(at)}", True))
        out.extend(Fact(f"{call} waits for your approval [{action_id}]", False)
                   for action_id, call in self.awaiting.items())
        if not self.actions and not self.awaiting and not self.closed:
            out.append(Fact("waiting for the agent's " + ("remedy" if self.diagnosis else "diagnosis"), False))
        if not self.actions and self.escalated_at is not None:
            out.append(Fact(f"escalated without a remedy: {abridge(self.escalation or '', TEXT_CHARS)}", False))
        return out

    def _verification(self) -> list[Fact]:
        if self.ticket_id is None:
            return [Fact("waiting for a ticket", False)]
        what = f"{self.invariant} on {self.entity}"
        out: list[Fact] = []
        if self.cleared_at is not None:
            out.append(Fact(f"{what} cleared at {self.stamp(self.cleared_at)}", True))
        elif not self.closed:
            out.append(Fact(f"waiting for the monitor to see {what} clear", False))
        if self.resolved_at is not None:
            who = f"{self.resolved_by}" + (f" ({self.resolver})" if self.resolver else "")
            out.append(Fact(f"{self.ticket_id} resolved by {who} at {self.stamp(self.resolved_at)}", True))
        elif self.escalated_at is not None:
            out.append(Fact(f"{self.ticket_id} escalated at {self.stamp(self.escalated_at)}: "
                            f"{abridge(self.escalation or '', TEXT_CHARS)}", True))
        elif self.cleared_at is not None:
            out.append(Fact(f"waiting for the agent to resolve {self.ticket_id}", False))
        return out


def waiting_facts(stage: Stage) -> list[Fact]:
    """What a stage waits for before any incident exists."""
    return [{"injection": Fact("waiting for the fault to be injected", False),
             "detection": Fact("waiting for the monitor to see an invariant break", False),
             "remediation": Fact("waiting for a ticket to work on", False),
             "verification": Fact("waiting for a ticket", False)}[stage]]


class IncidentTimeline(RunFold):
    """Pure fold of one run's incidents. Call :meth:`apply` in log order; read :attr:`incidents`
    (oldest first) or :meth:`current`.

    Events of other runs are ignored when ``run`` is given (the first event fixes
    it otherwise); ``apply`` never raises on a well-formed :class:`~events.Event`.
    """

    def __init__(self, run: str | None = None) -> None:
        super().__init__(run)
        self.incidents: list[Incident] = []
        self._by_ticket: dict[str, Incident] = {}
        self._by_fault: dict[str, Incident] = {}
        self._violated: dict[tuple[str, str], datetime] = {}  # active violations: when recorded
        self.faults = FaultFold(run)  # every fault's life, by the one rule (projections.faults)
        self.handlers |= {kind: self._fault for kind in FAULT_EVENTS}
        self.handlers |= {
            chaos.FaultInjected.TYPE: self._injected,
            chaos.FaultReverted.TYPE: self._reverted,
            inv.InvariantViolated.TYPE: self._violation,
            inv.InvariantCleared.TYPE: self._cleared,
            ticket.TicketOpened.TYPE: self._opened,
            ticket.TicketClaimed.TYPE: self._claimed,
            ticket.TicketDiagnosed.TYPE: self._diagnosed,
            ticket.TicketActionRequested.TYPE: self._requested,
            ticket.TicketActionApproved.TYPE: self._approved,
            ticket.TicketActionRejected.TYPE: self._rejected,
            ticket.TicketActionExecuted.TYPE: self._executed,
            ticket.TicketResolved.TYPE: self._resolved,
            ticket.TicketEscalated.TYPE: self._escalated,
            ticket.TicketReopened.TYPE: self._reopened,
        }

    def current(self) -> Incident | None:
        """The latest incident (the one the audience watches), or None before any."""
        return self.incidents[-1] if self.incidents else None

    # -- folding --------------------------------------------------------------------------------

    def _fault(self, p: chaos.FaultPayload, at: datetime) -> None:
        self.faults.fold(p, at)

    def _injected(self, p: chaos.FaultInjected, at: datetime) -> None:
        life = self.faults.fold(p, at)
        if p.fault_id in self._by_fault:  # an adopted or re-announced fault: same story
            return
        incident = Incident(origin=at, fault_id=p.fault_id, fault_kind=p.kind, target=p.target, fault=life)
        incident.add(at, "injected", f"injected {p.kind} on {p.target}", brief=f"injected {p.kind} {p.target}")
        self.incidents.append(incident)
        self._by_fault[p.fault_id] = incident

    def _reverted(self, p: chaos.FaultReverted, at: datetime) -> None:
        self.faults.fold(p, at)
        incident = self._by_fault.get(p.fault_id)
        if incident is None or incident.reverted_at is not None:
            return
        incident.reverted_at, incident.revert_reason = at, p.reason
        nothing = " (nothing left to undo)" if p.changed is False else ""
        incident.add(at, "reverted", f"fault reverted ({p.reason}){nothing}", brief=f"reverted ({p.reason})")

    def _violation(self, p: inv.InvariantViolated, at: datetime) -> None:
        key = (p.invariant, p.entity)
        self._violated.setdefault(key, at)
        incident = self.current()
        # before its ticket, an incident tells each violation its fault caused (first record each)
        if (incident is not None and incident.fault_id is not None and incident.ticket_id is None
                and at >= incident.origin and key not in incident.violations):
            incident.violations.add(key)
            incident.add(at, "violated", f"violation {p.invariant}/{p.entity}")

    def _cleared(self, p: inv.InvariantCleared, at: datetime) -> None:
        self._violated.pop((p.invariant, p.entity), None)
        for incident in self.incidents:
            if (incident.cleared_at is None and incident.opened_at is not None and at >= incident.opened_at
                    and (incident.invariant, incident.entity) == (p.invariant, p.entity)):
                incident.cleared_at = at
                incident.add(at, "cleared", f"cleared {p.invariant}/{p.entity}", True, brief="cleared")

    def _opened(self, p: ticket.TicketOpened, at: datetime) -> None:
        if p.ticket_id in self._by_ticket:
            return
        incident = self.current()
        if incident is not None and incident.fault_id is not None and incident.ticket_id is None:
            pass  # the fault's ticket
        elif incident is not None and not (incident.closed and not incident.fault_active):
            incident.other_tickets += 1  # another symptom while the incident is going on
            return
        else:  # nothing going on: a violation of its own
            key = (p.invariant, p.entity)
            incident = Incident(origin=self._violated.get(key, at))
            if key in self._violated:
                incident.violations.add(key)
                incident.add(incident.origin, "violated", f"violation {p.invariant}/{p.entity}")
            self.incidents.append(incident)
        incident.ticket_id, incident.invariant, incident.entity, incident.opened_at = (
            p.ticket_id, p.invariant, p.entity, at)
        incident.add(at, "opened", f"ticket {p.ticket_id} opened: {p.invariant} on {p.entity}",
                     brief=f"{p.ticket_id} opened")
        self._by_ticket[p.ticket_id] = incident

    def _claimed(self, p: ticket.TicketClaimed, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is None:
            return
        first = incident.claimed_at is None
        incident.claimed_at, incident.agent, incident.policy = at, p.agent, p.policy
        incident.add(at, "claimed", f"claimed by {p.agent}" if first else f"claimed again by {p.agent}",
                     brief="claimed" if first else "claimed again")

    def _diagnosed(self, p: ticket.TicketDiagnosed, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is not None:
            incident.diagnosis = p.hypothesis
            incident.add(at, "diagnosed", f"diagnosed: {abridge(p.hypothesis, 50)}", brief="diagnosed")

    def _requested(self, p: ticket.TicketActionRequested, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is not None and p.awaiting_approval:
            call = _call(p.tool, p.args)
            incident.awaiting[p.action_id] = call
            incident.add(at, "approval_requested", f"{call} awaits approval")

    def _approved(self, p: ticket.TicketActionApproved, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is not None:
            call = incident.awaiting.pop(p.action_id, p.action_id)
            incident.add(at, "approved", f"{call} approved by {p.by}", True)

    def _rejected(self, p: ticket.TicketActionRejected, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is not None:
            call = incident.awaiting.pop(p.action_id, p.action_id)
            incident.add(at, "rejected", f"{call} rejected by {p.by}", False)

    def _executed(self, p: ticket.TicketActionExecuted, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is not None:
            call = _call(p.tool, p.args)
            incident.awaiting.pop(p.action_id, None)
            incident.actions.append((at, call, p.ok))
            incident.add(at, "action", f"{call} {'ok' if p.ok else 'FAILED'}", p.ok)

    def _resolved(self, p: ticket.TicketResolved, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is not None:
            incident.resolved_at, incident.resolved_by, incident.resolver = at, p.by, p.agent
            incident.add(at, "resolved", f"resolved by {p.by}", True)

    def _escalated(self, p: ticket.TicketEscalated, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is not None:
            incident.escalated_at, incident.escalation = at, p.reason
            incident.add(at, "escalated", f"escalated: {abridge(p.reason, 50)}", False, brief="escalated")

    def _reopened(self, p: ticket.TicketReopened, at: datetime) -> None:
        incident = self._by_ticket.get(p.ticket_id)
        if incident is not None:
            incident.resolved_at = incident.resolved_by = incident.resolver = None
            incident.escalated_at = incident.escalation = None
            incident.add(at, "reopened", f"reopened: {abridge(p.reason, 50)}", brief="reopened")

"""The state of one ticket, folded from its events.

``apply_event`` is total over the ticket catalogue and does not judge: it
records what happened. Legality is the aggregate's job (``aggregate.py``),
so the read side can fold any history the write side ever accepted.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from events.catalogue import ticket


class TicketStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DIAGNOSED = "diagnosed"
    REMEDIATING = "remediating"
    VERIFIED = "verified"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


ACTIVE = frozenset({TicketStatus.CLAIMED, TicketStatus.DIAGNOSED,
                    TicketStatus.REMEDIATING, TicketStatus.VERIFIED})
TERMINAL = frozenset({TicketStatus.RESOLVED, TicketStatus.ESCALATED})


class Action(BaseModel):
    """One action on a ticket. ``status``: ``requested`` (auto approval: about to run),
    ``awaiting_approval`` (manual approval: waiting for a human), ``approved``,
    ``rejected`` (final; ``reason`` says why), ``superseded`` (it was awaiting approval when
    another agent reclaimed the ticket: final, nothing will run it) or ``executed`` (``ok``
    says how it went)."""

    model_config = ConfigDict(frozen=True)
    action_id: str
    tool: str
    args: dict[str, Any] = {}
    status: str = "requested"
    ok: bool | None = None
    decided_by: str | None = None
    reason: str | None = None

    @property
    def pending_approval(self) -> bool:
        return self.status == "awaiting_approval"


class TicketState(BaseModel):
    """One row of the ticket log; also the aggregate's state."""

    model_config = ConfigDict(frozen=True)

    ticket_id: str
    run: str = ""
    status: TicketStatus = TicketStatus.OPEN
    invariant: str
    entity: str
    subject: str
    summary: str
    opened_at: datetime
    updated_at: datetime
    first_seen: datetime
    recurrences: int = 0
    claimed_by: str | None = None
    policy: str | None = None
    lease_until: datetime | None = None
    hypothesis: str | None = None
    actions: tuple[Action, ...] = ()
    resolved_by: str | None = None
    outcome_note: str | None = None
    events: int = 1

    def action(self, action_id: str) -> Action | None:
        return next((a for a in self.actions if a.action_id == action_id), None)

    def pending_approvals(self) -> list[Action]:
        """Actions waiting for a human's decision (only while the ticket is being worked)."""
        if self.status not in ACTIVE:
            return []
        return [a for a in self.actions if a.pending_approval]

    def claimable(self, now: datetime) -> bool:
        """Open, or held by an agent whose lease has run out."""
        if self.status == TicketStatus.OPEN:
            return True
        return (self.status in ACTIVE and self.lease_until is not None
                and self.lease_until < now)


def _replace_action(actions: tuple[Action, ...], action_id: str, **changes: Any) -> tuple[Action, ...]:
    """The actions with ``action_id``'s updated in place (unchanged if there is no such action)."""
    return tuple(a.model_copy(update=changes) if a.action_id == action_id else a for a in actions)


def opened_state(payload: ticket.TicketOpened, at: datetime, run: str = "") -> TicketState:
    return TicketState(
        ticket_id=payload.ticket_id, run=run, invariant=payload.invariant,
        entity=payload.entity, subject=payload.subject, summary=payload.summary,
        opened_at=at, updated_at=at, first_seen=payload.first_seen,
    )


def apply_event(state: TicketState | None, payload: ticket.TicketPayload, at: datetime,
                run: str = "") -> TicketState:
    """The next state after ``payload`` happened at ``at``."""
    fold = TicketFold(state)
    fold.apply(payload, at, run)
    folded = fold.state
    assert folded is not None  # apply raises unless there is a state to return
    return folded


class TicketFold:
    """One ticket's state, folded event by event.

    :meth:`apply` is :func:`apply_event` in place; :attr:`state` is the result: equal, field for
    field and in ``model_fields_set``, to calling :func:`apply_event` once per event. It costs one
    model copy per read of :attr:`state` instead of one per event (the ticket log folds a batch's
    events per ticket this way, then reads each state once).
    """

    __slots__ = ("_changes", "_current", "_state")

    def __init__(self, state: TicketState | None) -> None:
        self._state = state
        self._current: dict[str, Any] | None = None  # the state's fields with the pending changes
        self._changes: dict[str, Any] = {}  # changed since _state was last materialised

    def apply(self, payload: ticket.TicketPayload, at: datetime, run: str = "") -> None:
        """Fold ``payload``; raises ``ValueError`` (changing nothing) where :func:`apply_event` does."""
        if isinstance(payload, ticket.TicketOpened):
            self._state, self._current, self._changes = opened_state(payload, at, run), None, {}
            return
        if self._state is None:
            raise ValueError(f"{payload.TYPE} before ticket.opened for {payload.ticket_id}")
        current = self._current
        if current is None:
            # the field values as stored (TicketState has no extras or private attributes), copied
            # directly: iterating the model filters every key, per event, for nothing
            current = self._current = self._state.__dict__.copy()
        changes = _changes(current, payload)
        changes["updated_at"] = at
        changes["events"] = current["events"] + 1
        current.update(changes)
        self._changes.update(changes)

    @property
    def state(self) -> TicketState | None:
        """The folded state (None until a ``ticket.opened``)."""
        if self._changes and self._state is not None:
            self._state = self._state.model_copy(update=self._changes)
            self._changes = {}
        return self._state


def _changes(state: dict[str, Any], p: ticket.TicketPayload) -> dict[str, Any]:
    """The fields ``p`` changes, given the current ones (``state``: field name -> value)."""
    match p:
        case ticket.TicketRecurred():
            return {"recurrences": state["recurrences"] + 1}
        case ticket.TicketClaimed():
            # a new claim supersedes whatever the previous holder was still waiting on:
            # its session is gone, so approving that request would run nothing
            actions = tuple(a.model_copy(update={"status": "superseded", "reason": f"reclaimed by {p.agent}"})
                            if a.pending_approval else a for a in state["actions"])
            return {"status": TicketStatus.CLAIMED, "claimed_by": p.agent,
                    "policy": p.policy, "lease_until": p.lease_until, "actions": actions}
        case ticket.TicketLeaseRenewed():
            return {"lease_until": p.lease_until}
        case ticket.TicketDiagnosed():
            return {"status": TicketStatus.DIAGNOSED, "hypothesis": p.hypothesis}
        case ticket.TicketActionRequested():
            action = Action(action_id=p.action_id, tool=p.tool, args=p.args,
                            status="awaiting_approval" if p.awaiting_approval else "requested")
            return {"status": TicketStatus.REMEDIATING, "actions": (*state["actions"], action)}
        case ticket.TicketActionApproved():
            return {"actions": _replace_action(state["actions"], p.action_id, status="approved", decided_by=p.by)}
        case ticket.TicketActionRejected():
            return {"actions": _replace_action(state["actions"], p.action_id, status="rejected", decided_by=p.by,
                                               reason=p.reason)}
        case ticket.TicketActionExecuted():
            previous = next((a for a in state["actions"] if a.action_id == p.action_id), None)
            done = Action(action_id=p.action_id, tool=p.tool, args=p.args,
                          status="executed", ok=p.ok, decided_by=previous.decided_by if previous else None)
            kept = tuple(a for a in state["actions"] if a.action_id != p.action_id)
            return {"status": TicketStatus.REMEDIATING, "actions": (*kept, done)}
        case ticket.TicketVerified():
            return {"status": TicketStatus.VERIFIED}
        case ticket.TicketResolved():
            return {"status": TicketStatus.RESOLVED, "resolved_by": p.by,
                    "outcome_note": p.note or None, "lease_until": None}
        case ticket.TicketEscalated():
            return {"status": TicketStatus.ESCALATED, "outcome_note": p.reason,
                    "lease_until": None}
        case ticket.TicketReopened():
            return {"status": TicketStatus.OPEN, "claimed_by": None, "lease_until": None,
                    "resolved_by": None, "outcome_note": p.reason}
    raise ValueError(f"unknown ticket event {p.TYPE}")

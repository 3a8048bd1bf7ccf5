"""The tickets of one run as its judges see them: when each opened, for which violation, how it
ended; and when violations cleared.

The run's incident is judged on them once, by :class:`projections.incident_verdict.IncidentFold`,
which both judges of a run read: the run summary (:mod:`projections.timeline`) and the trial score
(:mod:`projections.scores`). :class:`RunTickets` is that fold. Its owner registers
:attr:`RunTickets.handlers` (the ticket lifecycle) among its own, gives it every ``inv.cleared``
(:meth:`RunTickets.record_clear`), and appends to a ticket's ``actions`` whatever it keeps of an
executed action (a record, a time). The rules:

- a ticket is ``open`` from its ``ticket.opened``, then ``resolved`` or ``escalated``; a reopened
  ticket is open again and forgets its resolution;
- ``reason`` is the resolution's note, the escalation's reason or the reopening's reason, the latest;
- lifecycle events of a ticket whose opening is not in the log (a partial replay) are ignored;
- a ticket's violation cleared at the first ``inv.cleared`` of its invariant and entity at or
  after it opened (:meth:`RunTickets.cleared_at`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from events import InvariantCleared, TicketEscalated, TicketOpened, TicketReopened, TicketResolved
from projections.run_fold import Handler

ActionT = TypeVar("ActionT")


@dataclass(slots=True)
class RunTicket(Generic[ActionT]):
    """One ticket of the run: when it opened, for which violation, how it ended (so far)."""

    ticket_id: str
    invariant: str
    entity: str
    opened_at: datetime
    status: str = "open"
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    agent: str | None = None  # the agent that resolved or escalated it
    reason: str | None = None
    actions: list[ActionT] = field(default_factory=list)  # what the owner keeps of its executed actions


class RunTickets(Generic[ActionT]):
    """Pure fold of a run's tickets and clears (see the module doc)."""

    def __init__(self) -> None:
        self.by_id: dict[str, RunTicket[ActionT]] = {}
        self._clears: list[tuple[str, str, datetime]] = []  # (invariant, entity, when)
        self.handlers: dict[str, Handler] = {
            TicketOpened.TYPE: self._opened,
            TicketResolved.TYPE: self._resolved,
            TicketEscalated.TYPE: self._escalated,
            TicketReopened.TYPE: self._reopened,
        }

    def get(self, ticket_id: str) -> RunTicket[ActionT] | None:
        return self.by_id.get(ticket_id)

    def record_clear(self, p: InvariantCleared, at: datetime) -> None:
        self._clears.append((p.invariant, p.entity, at))

    def opened_since(self, moment: datetime) -> list[RunTicket[ActionT]]:
        """The tickets opened at or after ``moment``, first opened first."""
        return sorted((t for t in self.by_id.values() if t.opened_at >= moment), key=lambda t: t.opened_at)

    def cleared_at(self, ticket: RunTicket[ActionT], not_before: datetime | None = None) -> datetime | None:
        """When the ticket's violation first cleared at or after it opened (and ``not_before``); None: not yet."""
        floor = max(ticket.opened_at, not_before) if not_before is not None else ticket.opened_at
        return min((at for invariant, entity, at in self._clears
                    if invariant == ticket.invariant and entity == ticket.entity and at >= floor), default=None)

    # -- folding ------------------------------------------------------------

    def _opened(self, p: TicketOpened, at: datetime) -> None:
        self.by_id[p.ticket_id] = RunTicket(p.ticket_id, p.invariant, p.entity, at)

    def _resolved(self, p: TicketResolved, at: datetime) -> None:
        ticket = self.by_id.get(p.ticket_id)
        if ticket is not None:
            ticket.status, ticket.resolved_at, ticket.resolved_by = "resolved", at, p.by
            ticket.agent, ticket.reason = p.agent, p.note or None

    def _escalated(self, p: TicketEscalated, at: datetime) -> None:
        ticket = self.by_id.get(p.ticket_id)
        if ticket is not None:
            ticket.status, ticket.agent, ticket.reason = "escalated", p.agent, p.reason

    def _reopened(self, p: TicketReopened, at: datetime) -> None:
        ticket = self.by_id.get(p.ticket_id)
        if ticket is not None:
            ticket.status, ticket.reason = "open", p.reason
            ticket.resolved_at = ticket.resolved_by = ticket.agent = None

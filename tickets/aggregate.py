"""The ``Ticket`` aggregate: the ticket lifecycle, enforced.

An ``eventsourcing`` aggregate whose events carry the catalogue's pydantic
payloads (``events.catalogue.ticket``). Commands check the transition against
the current state and raise :class:`IllegalTransition` when it is not allowed;
a legal command triggers one event, which mutates the state through the same
fold the ticket log uses (``state.apply_event``).

Lifecycle::

    open --claim--> claimed --diagnose--> diagnosed --act--> remediating --verify--> verified
      |                  \\___________________ (any active state) ____________________/ |
      |                                   escalate -> escalated          resolve(agent) -> resolved
      +--resolve(self-healed)--> resolved
    resolved | escalated --reopen--> open

An active ticket whose lease has expired may be claimed again by another agent.

Actions: ``request_action`` records the intent (with ``awaiting_approval`` in
manual approval mode); a pending action is approved or rejected by anyone (a
human, through the CLI or the console) while the ticket is active, then
``record_action`` records what the holder's execution did.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from events.catalogue import ticket
from events.envelope import utcnow
from tickets.state import ACTIVE, TERMINAL, TicketStatus, apply_event

_NAMESPACE = uuid.UUID("6f1c9c4e-1d1a-4a43-9a55-0c2b7f0e8a11")


class IllegalTransition(Exception):
    """The command is not allowed in the ticket's current state."""


def aggregate_id(ticket_id: str) -> uuid.UUID:
    """The aggregate's UUID, derived from the (subject-safe) ticket id."""
    return uuid.uuid5(_NAMESPACE, ticket_id)


class Ticket(Aggregate):
    """One ticket. ``state`` is its current :class:`TicketState`."""

    class Opened(Aggregate.Created):
        payload: ticket.TicketOpened

    class Recorded(Aggregate.Event):
        """Any event after opening; ``payload`` says which."""

        payload: ticket.TicketPayload

        def apply(self, aggregate: Any) -> None:
            aggregate.state = apply_event(aggregate.state, self.payload, self.timestamp,
                                          aggregate.state.run)

    def __init__(self, payload: ticket.TicketOpened) -> None:
        self.state = apply_event(None, payload, utcnow())

    # -- creation -----------------------------------------------------------

    @classmethod
    def open(cls, payload: ticket.TicketOpened, *, run: str = "", at: datetime | None = None) -> Ticket:
        created = cls._create(cls.Opened, id=aggregate_id(payload.ticket_id), payload=payload,
                              timestamp=at)
        created.state = apply_event(None, payload, created.created_on, run)
        return created

    # -- reading ------------------------------------------------------------

    @property
    def ticket_id(self) -> str:
        return self.state.ticket_id

    @property
    def status(self) -> TicketStatus:
        return self.state.status

    # -- commands -------------------------------------------------------------

    def recur(self, evidence: dict[str, Any]) -> None:
        self._require_not(TERMINAL, "recur")
        self._record(ticket.TicketRecurred(ticket_id=self.ticket_id, evidence=evidence))

    def claim(self, agent: str, policy: str, lease_until: datetime, now: datetime | None = None) -> None:
        now = now or utcnow()
        if not self.state.claimable(now):
            holder = f" held by {self.state.claimed_by}" if self.state.claimed_by else ""
            raise IllegalTransition(f"{self.ticket_id} is {self.status}{holder}: cannot claim")
        self._record(ticket.TicketClaimed(ticket_id=self.ticket_id, agent=agent, policy=policy,
                                          lease_until=lease_until))

    def renew_lease(self, agent: str, lease_until: datetime) -> None:
        """The holder keeps its claim for longer (it is alive, e.g. waiting on a human)."""
        self._require_holder(agent, "renew the lease of")
        if self.state.lease_until is not None and lease_until <= self.state.lease_until:
            raise IllegalTransition(f"{self.ticket_id}: a renewed lease must end later than the current one")
        self._record(ticket.TicketLeaseRenewed(ticket_id=self.ticket_id, agent=agent, lease_until=lease_until))

    def diagnose(self, agent: str, hypothesis: str, evidence: dict[str, Any]) -> None:
        self._require_holder(agent, "diagnose")
        self._record(ticket.TicketDiagnosed(ticket_id=self.ticket_id, hypothesis=hypothesis,
                                            evidence=evidence))

    def request_action(self, agent: str, action_id: str, tool: str, args: dict[str, Any], *,
                       awaiting_approval: bool = False, target: str | None = None) -> None:
        self._require_holder(agent, "request an action on")
        if self.state.action(action_id) is not None:
            raise IllegalTransition(f"{self.ticket_id}: action {action_id} was already requested")
        self._record(ticket.TicketActionRequested(ticket_id=self.ticket_id, action_id=action_id,
                                                  tool=tool, args=args, awaiting_approval=awaiting_approval,
                                                  target=target))

    def approve_action(self, action_id: str, by: str) -> None:
        """A human lets a pending action run (manual approval). Anyone may decide, not only the holder."""
        self._require_pending(action_id, "approve")
        self._record(ticket.TicketActionApproved(ticket_id=self.ticket_id, action_id=action_id, by=by))

    def reject_action(self, action_id: str, by: str, reason: str) -> None:
        """A human refuses a pending action; the agent gets ``reason`` back."""
        if not reason.strip():
            raise IllegalTransition("a rejection needs a reason")
        self._require_pending(action_id, "reject")
        self._record(ticket.TicketActionRejected(ticket_id=self.ticket_id, action_id=action_id, by=by,
                                                 reason=reason))

    def record_action(self, agent: str, action_id: str, tool: str, args: dict[str, Any],
                      ok: bool, result: Any, *, target: str | None = None) -> None:
        self._require_holder(agent, "record an action on")
        action = self.state.action(action_id)
        if action is not None and action.status in ("awaiting_approval", "rejected"):
            raise IllegalTransition(f"action {action_id} is {action.status}: it may not run")
        self._record(ticket.TicketActionExecuted(ticket_id=self.ticket_id, action_id=action_id,
                                                 tool=tool, args=args, ok=ok, result=result, target=target))

    def verify(self, agent: str, evidence: dict[str, Any]) -> None:
        self._require_holder(agent, "verify")
        self._record(ticket.TicketVerified(ticket_id=self.ticket_id, evidence=evidence))

    def resolve_by_agent(self, agent: str, note: str = "") -> None:
        self._require_holder(agent, "resolve")
        if self.status != TicketStatus.VERIFIED:
            raise IllegalTransition(f"{self.ticket_id} is {self.status}: verify before resolving")
        self._record(ticket.TicketResolved(ticket_id=self.ticket_id, by="agent", agent=agent, note=note))

    def resolve_self_healed(self, note: str = "", agent: str | None = None) -> None:
        """The violation cleared with nobody's help: an unclaimed ticket, or one whose
        holder (``agent``) finds it already cleared before taking any action."""
        if self.status == TicketStatus.OPEN:
            pass
        elif agent is not None and self.status in ACTIVE and self.state.claimed_by == agent:
            if any(a.status == "executed" for a in self.state.actions):
                raise IllegalTransition(f"{self.ticket_id}: {agent} acted on it; verify instead")
        else:
            raise IllegalTransition(
                f"{self.ticket_id} is {self.status}: only an unclaimed ticket self-heals")
        self._record(ticket.TicketResolved(ticket_id=self.ticket_id, by="self-healed", agent=agent, note=note))

    def escalate(self, reason: str, agent: str | None = None) -> None:
        self._require_not(TERMINAL, "escalate")
        if agent is not None and self.status in ACTIVE and self.state.claimed_by != agent:
            raise IllegalTransition(f"{self.ticket_id} is held by {self.state.claimed_by}, not {agent}")
        self._record(ticket.TicketEscalated(ticket_id=self.ticket_id, reason=reason, agent=agent))

    def reopen(self, reason: str) -> None:
        if self.status not in TERMINAL:
            raise IllegalTransition(f"{self.ticket_id} is {self.status}: only a closed ticket reopens")
        self._record(ticket.TicketReopened(ticket_id=self.ticket_id, reason=reason))

    # -- internals ------------------------------------------------------------

    def _record(self, payload: ticket.TicketPayload, at: datetime | None = None) -> None:
        self.trigger_event(self.Recorded, payload=payload, timestamp=at)

    def _require_not(self, statuses: frozenset[TicketStatus], verb: str) -> None:
        if self.status in statuses:
            raise IllegalTransition(f"{self.ticket_id} is {self.status}: cannot {verb}")

    def _require_pending(self, action_id: str, verb: str) -> None:
        if self.status not in ACTIVE:
            raise IllegalTransition(f"{self.ticket_id} is {self.status}: cannot {verb} its actions")
        action = self.state.action(action_id)
        if action is None:
            raise IllegalTransition(f"{self.ticket_id} has no action {action_id}")
        if not action.pending_approval:
            raise IllegalTransition(f"action {action_id} is {action.status}, not awaiting approval: "
                                    f"cannot {verb} it")

    def _require_holder(self, agent: str, verb: str) -> None:
        if self.status not in ACTIVE:
            raise IllegalTransition(f"{self.ticket_id} is {self.status}: cannot {verb}")
        if self.state.claimed_by != agent:
            raise IllegalTransition(
                f"{self.ticket_id} is held by {self.state.claimed_by}: {agent} cannot {verb}")

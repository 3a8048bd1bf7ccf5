"""``ticket.*``: the ticket aggregate's events, each on ``lab.<run>.ticket.<id>``.

These payloads are the aggregate's stored events (see ``tickets``):
the lifecycle rules live in the aggregate, not here.
"""

from datetime import datetime
from typing import Any, Literal

from events.envelope import Payload


class TicketPayload(Payload):
    """Base of all ticket events: each names its ticket. Every ticket event derives from it directly
    (the ticket log lists its topics from ``TicketPayload.__subclasses__()``); the field groups some
    share come in as the mixins below, listed before it so ``ticket_id`` stays the first field."""

    ticket_id: str


class _ActionCall(Payload):
    """The mutating call an action makes (requested, then executed): ``action_id`` names the action
    (the agent gives it its ``agent.tool_call``'s ``call_id``), ``tool`` and ``args`` the call."""

    action_id: str
    tool: str
    args: dict[str, Any] = {}


class _ActionDecision(Payload):
    """A human's decision on a requested action: ``by`` is who decided."""

    action_id: str
    by: str


class TicketOpened(TicketPayload):
    TYPE = "ticket.opened"
    invariant: str
    entity: str
    subject: str
    summary: str
    evidence: dict[str, Any] = {}
    first_seen: datetime


class TicketRecurred(TicketPayload):
    TYPE = "ticket.recurred"
    evidence: dict[str, Any] = {}


class TicketClaimed(TicketPayload):
    TYPE = "ticket.claimed"
    agent: str
    policy: str
    lease_until: datetime


class TicketLeaseRenewed(TicketPayload):
    """The holder extends its lease, e.g. while a human takes time to approve an action."""

    TYPE = "ticket.lease_renewed"
    agent: str
    lease_until: datetime


class TicketDiagnosed(TicketPayload):
    TYPE = "ticket.diagnosed"
    hypothesis: str
    evidence: dict[str, Any] = {}


class TicketActionRequested(_ActionCall, TicketPayload):
    """A mutating call the agent means to make. ``target``: the entity it acts on, named as the
    subject's fault kit names its targets (the tool's ``acts_on``); None when unknown (older runs,
    tools that do not say)."""

    TYPE = "ticket.action_requested"
    awaiting_approval: bool = False
    target: str | None = None


class TicketActionApproved(_ActionDecision, TicketPayload):
    """A human approved a requested action (manual approval mode)."""

    TYPE = "ticket.action_approved"


class TicketActionRejected(_ActionDecision, TicketPayload):
    """A human rejected a requested action; the reason goes back to the agent."""

    TYPE = "ticket.action_rejected"
    reason: str


class TicketActionExecuted(_ActionCall, TicketPayload):
    """A mutating call that ran. ``target`` as on ``ticket.action_requested``."""

    TYPE = "ticket.action_executed"
    ok: bool
    result: Any = None
    target: str | None = None


class TicketVerified(TicketPayload):
    TYPE = "ticket.verified"
    evidence: dict[str, Any] = {}


class TicketResolved(TicketPayload):
    TYPE = "ticket.resolved"
    by: Literal["agent", "self-healed"]
    agent: str | None = None
    note: str = ""


class TicketEscalated(TicketPayload):
    TYPE = "ticket.escalated"
    reason: str
    agent: str | None = None


class TicketReopened(TicketPayload):
    TYPE = "ticket.reopened"
    reason: str

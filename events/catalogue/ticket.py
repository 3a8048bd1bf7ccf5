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
    """A decision on a requested action: ``by`` is who decided (a human, or the agent itself when no
    human decided in time)."""

    action_id: str
    by: str


class TicketOpened(TicketPayload):
    """The monitor opened a ticket for a new violation episode of ``invariant`` on ``entity`` that no unclosed ticket
    covers (also when reconciliation finds an episode without one). ``summary``, ``evidence`` and ``first_seen`` are its
    ``inv.violated``'s: ``first_seen`` names the episode."""

    TYPE = "ticket.opened"
    invariant: str
    entity: str
    subject: str
    summary: str
    evidence: dict[str, Any] = {}
    first_seen: datetime


class TicketRecurred(TicketPayload):
    """The monitor saw the ticket's violation start again (a new ``inv.violated``) before the ticket was closed;
    ``evidence``: the new episode's. A violation after the ticket closed opens a new ticket instead."""

    TYPE = "ticket.recurred"
    evidence: dict[str, Any] = {}


class TicketClaimed(TicketPayload):
    """An agent instance (``agent/<instance>``) took the ticket to work it with its ``policy``, and holds it until
    ``lease_until`` (renewed while its session runs). A claim of a ticket whose lease ran out reclaims it from its
    previous holder; optimistic concurrency lets one claim win."""

    TYPE = "ticket.claimed"
    agent: str
    policy: str
    lease_until: datetime


class TicketLeaseRenewed(TicketPayload):
    """The holder extends its lease: the agent renews it every third of a lease for as long as its
    session lasts (also while a human takes time to approve an action)."""

    TYPE = "ticket.lease_renewed"
    agent: str
    lease_until: datetime


class TicketDiagnosed(TicketPayload):
    """The holder's diagnosis, recorded before any remedy: the ``rules`` policy's playbook hypothesis (``evidence``: the
    read-only tools it ran), or the model's reasoning before its first mutating call (``evidence``: ``turn``,
    ``remedy``)."""

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
    """A requested action was rejected, by a human or, when nobody decided within the approval timeout,
    by the agent itself (``by`` its id, ``reason`` "no decision within Ns"); the reason goes back to the
    agent."""

    TYPE = "ticket.action_rejected"
    reason: str


class TicketActionExecuted(_ActionCall, TicketPayload):
    """A mutating call that ran. ``target`` as on ``ticket.action_requested``."""

    TYPE = "ticket.action_executed"
    ok: bool
    result: Any = None
    target: str | None = None


class TicketVerified(TicketPayload):
    """The holder saw the ticket's violation clear (the monitor's ``inv.cleared``) after its first successful remedy,
    or, if every action that ran failed, after the first of them; ``evidence.cleared_after_seq``: the log position
    of that action's ``agent.tool_call``. ``ticket.resolved`` follows."""

    TYPE = "ticket.verified"
    evidence: dict[str, Any] = {}


class TicketResolved(TicketPayload):
    """The ticket is closed as fixed. ``by`` ``agent``: the holder verified its remedy (``agent`` names it; ``note``
    says so, with the model's summary if any); ``self-healed``: the violation cleared with no action by an agent,
    recorded by the monitor (an unclaimed ticket, ``agent`` None) or by the holder that found it so. Run scoring may
    credit a fault's revert instead (``projections.timeline``)."""

    TYPE = "ticket.resolved"
    by: Literal["agent", "self-healed"]
    agent: str | None = None
    note: str = ""


class TicketEscalated(TicketPayload):
    """The ticket is closed and handed to humans, with the ``reason``: the policy gave up, verification failed, a budget
    or the session deadline ran out, an error, or the agent stopped mid-session. ``agent``: the holder that escalated it
    (None: not an agent)."""

    TYPE = "ticket.escalated"
    reason: str
    agent: str | None = None


class TicketReopened(TicketPayload):
    """A closed (resolved or escalated) ticket made open again, with the ``reason``: readers count it open. The ticket
    aggregate allows it (``Ticket.reopen``), but no service or command records it today."""

    TYPE = "ticket.reopened"
    reason: str

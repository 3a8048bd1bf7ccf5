"""Deciding pending actions (manual approval mode): find the action, approve or reject it.

Used by the CLI (``oplab approve ID`` / ``oplab reject ID --reason …``) and the
console. The decision is a command on the ticket aggregate, saved through the
:class:`~tickets.store.TicketStore` with optimistic concurrency: a
decision racing the agent (or another human) is retried on fresh state, and an
action that is no longer pending (already decided, or its ticket closed) is
refused with :class:`~tickets.aggregate.IllegalTransition`.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import Event, TicketActionRequested
from events.bus import Bus
from events.replay import Delivered
from events.subjects import any_run_domain, run_domain
from tickets.aggregate import IllegalTransition
from tickets.store import TicketStore


class ActionNotFound(LookupError):
    """No ticket in the searched runs ever requested this action."""


@dataclass(frozen=True)
class ActionRef:
    run: str
    ticket_id: str
    action_id: str
    tool: str


async def find_action(bus: Bus, action_id: str, run: str | None = None) -> ActionRef:
    """The ticket that requested ``action_id`` (in ``run``, or in any run, newest wins)."""
    found: list[ActionRef] = []

    async def handle(d: Delivered) -> None:
        data = d.event.data
        if isinstance(data, TicketActionRequested) and data.action_id == action_id:
            found.append(ActionRef(d.event.run, data.ticket_id, action_id, data.tool))

    subject = run_domain(run, "ticket") if run else any_run_domain("ticket")
    await bus.replay(subject, handle)
    if not found:
        where = f"run {run}" if run else "any run"
        raise ActionNotFound(f"no action {action_id!r} was requested in {where}")
    return found[-1]


async def decide(bus: Bus, ref: ActionRef, *, approve: bool, by: str, reason: str = "") -> list[Event]:
    """Approve or reject the pending action ``ref``; returns the stored event(s)."""
    store = TicketStore(bus, ref.run)
    if approve:
        return await store.update(ref.ticket_id, lambda t: t.approve_action(ref.action_id, by))
    if not reason.strip():
        raise IllegalTransition("a rejection needs a reason")
    return await store.update(ref.ticket_id, lambda t: t.reject_action(ref.action_id, by, reason))

"""Tickets, the write side: the event-sourced aggregate the monitor and the agents change (the
ticket log, its read side, is :mod:`projections.ticket_log`).

- ``state``: the fold of ticket events into a :class:`TicketState` (shared by both sides)
- ``aggregate``: :class:`Ticket`, an ``eventsourcing`` aggregate enforcing the lifecycle
- ``mapper``: ticket domain events <-> bus envelopes (pydantic payloads)
- ``store``: load/save tickets on their JetStream subjects with optimistic concurrency
"""

from tickets.aggregate import IllegalTransition, Ticket
from tickets.state import ACTIVE, TERMINAL, TicketState, TicketStatus, apply_event
from tickets.store import TicketNotFound, TicketStore

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "IllegalTransition",
    "Ticket",
    "TicketNotFound",
    "TicketState",
    "TicketStatus",
    "TicketStore",
    "apply_event",
]

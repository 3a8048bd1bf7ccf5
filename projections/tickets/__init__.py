"""Tickets: the event-sourced aggregate (write side) and the ticket log (read side).

- ``state``: the fold of ticket events into a :class:`TicketState` (shared by both sides)
- ``aggregate``: :class:`Ticket`, an ``eventsourcing`` aggregate enforcing the lifecycle
- ``mapper``: ticket domain events <-> bus envelopes (pydantic payloads)
- ``store``: load/save tickets on their JetStream subjects with optimistic concurrency
"""

from projections.tickets.aggregate import IllegalTransition, Ticket
from projections.tickets.state import ACTIVE, TERMINAL, TicketState, TicketStatus, apply_event
from projections.tickets.store import TicketNotFound, TicketStore

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

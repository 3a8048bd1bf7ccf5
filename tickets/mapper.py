"""Ticket domain events <-> bus envelopes.

The aggregate's events hold catalogue payloads; on the bus each becomes an
envelope whose ``data`` is that payload. ``originator_version`` is the event's
position in the ticket's subject (1-based), recovered on load.
"""

from __future__ import annotations

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic

from events import Event, TicketOpened, TicketPayload
from events.envelope import new_event
from tickets.aggregate import Ticket, aggregate_id


def to_envelope(domain_event: CanMutateAggregate, *, run: str, source: str,
                causation: str | None = None) -> Event:
    payload: TicketPayload = domain_event.payload  # type: ignore[attr-defined]
    return new_event(payload, run=run, source=source, correlation=payload.ticket_id,
                     causation=causation, time=domain_event.timestamp)


def to_domain_event(event: Event, version: int) -> CanMutateAggregate:
    payload = event.data
    if not isinstance(payload, TicketPayload):
        raise TypeError(f"{event.type} is not a ticket event")
    if isinstance(payload, TicketOpened):
        if version != 1:
            raise ValueError(f"{payload.ticket_id}: ticket.opened at position {version}")
        return Ticket.Opened(originator_id=aggregate_id(payload.ticket_id), originator_version=1,
                             timestamp=event.time, originator_topic=get_topic(Ticket),
                             payload=payload)
    return Ticket.Recorded(originator_id=aggregate_id(payload.ticket_id),
                           originator_version=version, timestamp=event.time, payload=payload)


def replay_ticket(events: list[Event], run: str) -> Ticket | None:
    """Rebuild a ticket from its stored events (oldest first); None if there are none."""
    ticket: Ticket | None = None
    for position, event in enumerate(events, start=1):
        domain_event = to_domain_event(event, position)
        ticket = domain_event.mutate(ticket)  # type: ignore[assignment]
        if position == 1 and ticket is not None:
            ticket.state = ticket.state.model_copy(update={"run": run, "opened_at": event.time,
                                                           "updated_at": event.time})
    return ticket

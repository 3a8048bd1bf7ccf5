"""JetStream as the tickets' event store.

``save`` publishes a ticket's pending events on ``lab.<run>.ticket.<id>`` with
``Nats-Expected-Last-Subject-Sequence`` = the sequence it was loaded at, so two
writers racing on one ticket cannot both win: the loser gets
:class:`~events.bus.ConcurrencyConflict`. ``load`` reads the subject and
rebuilds the aggregate. ``update`` is load → command → save, retried on a
conflict with fresh state (the command may then raise IllegalTransition,
which is the right answer to a lost race).

Causation: each saved event's ``causation`` is the ticket's previous event - the
one it was loaded at, and within one save the event saved just before - so a
ticket's events chain back to ``ticket.opened``. An explicit ``causation`` given
to ``save``/``update`` (the violation that opened or re-opened it, the
``inv.cleared`` that self-healed it) replaces that for the first event of the
save; the rest still chain one to the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from events import Event
from events.bus import Bus, ConcurrencyConflict
from events.subjects import ticket_subject
from tickets.aggregate import Ticket
from tickets.mapper import replay_ticket, to_envelope

log = logging.getLogger(__name__)


class TicketNotFound(LookupError):
    pass


class TicketStore:
    def __init__(self, bus: Bus, run: str) -> None:
        self.bus = bus
        self.run = run
        self._seqs: dict[str, int] = {}
        self._last_ids: dict[str, str] = {}  # per ticket: the id of the event it was loaded (or saved) at

    async def load(self, ticket_id: str) -> Ticket:
        history = await self.bus.read_subject(ticket_subject(self.run, ticket_id))
        ticket = replay_ticket([d.event for d in history], self.run)
        if ticket is None:
            raise TicketNotFound(ticket_id)
        self._seqs[ticket_id] = history[-1].seq
        self._last_ids[ticket_id] = history[-1].event.id
        return ticket

    async def save(self, ticket: Ticket, *, causation: str | None = None) -> list[Event]:
        """Publish pending events; returns them as stored. Raises ConcurrencyConflict.
        ``causation``: what caused the first of them (default: the ticket's previous event)."""
        expected = self._seqs.get(ticket.ticket_id, 0)
        cause = causation or self._last_ids.get(ticket.ticket_id)
        stored: list[Event] = []
        for domain_event in ticket.collect_events():
            event = to_envelope(domain_event, run=self.run, source=self.bus.source, causation=cause)
            expected = await self.bus.publish(event, expected_last_subject_seq=expected)
            stored.append(event)
            cause = event.id
        self._seqs[ticket.ticket_id] = expected
        if stored:
            self._last_ids[ticket.ticket_id] = stored[-1].id
        return stored

    async def update(self, ticket_id: str, command: Callable[[Ticket], None], *,
                     causation: str | None = None, attempts: int = 3) -> list[Event]:
        """Load, apply ``command``, save; on a conflict retry with fresh state, at once, up to
        ``attempts`` times in all; the last conflict is raised. Anything else (TicketNotFound, an
        illegal transition) is raised as it comes: a fresh load would not change the answer."""

        async def attempt() -> list[Event]:
            ticket = await self.load(ticket_id)
            command(ticket)
            return await self.save(ticket, causation=causation)

        def log_conflict(state: RetryCallState) -> None:
            log.info("ticket conflict", extra={"ticket": ticket_id, "attempt": state.attempt_number})

        retrying = AsyncRetrying(retry=retry_if_exception_type(ConcurrencyConflict), stop=stop_after_attempt(attempts),
                                 after=log_conflict, reraise=True)
        return await retrying(attempt)

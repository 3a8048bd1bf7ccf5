"""TicketStore.update's retries: how many, on what, and what surfaces (against a real NATS)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from events import TicketOpened
from events.bus import Bus, ConcurrencyConflict
from events.envelope import utcnow
from events.structured_logging import fields
from events.subjects import ticket_subject
from tickets import IllegalTransition, Ticket, TicketStore


def opened(ticket_id: str) -> TicketOpened:
    return TicketOpened(ticket_id=ticket_id, invariant="node_down", entity="node-2",
                        subject="ratelimiter", summary="node-2 is down", first_seen=utcnow())


class Overtaken(TicketStore):
    """A store whose first ``times`` reads are each overtaken by a rival's write before it saves:
    races it loses (the rival is a real store writing to the real stream)."""

    def __init__(self, bus: Bus, run: str, times: int) -> None:
        super().__init__(bus, run)
        self.rival = TicketStore(bus, run)
        self.times = times
        self.loads = 0

    async def load(self, ticket_id: str) -> Ticket:
        ticket = await super().load(ticket_id)
        self.loads += 1
        if self.loads <= self.times:
            await self.rival.update(ticket_id, lambda t: t.recur({"rival": self.loads}))
        return ticket


async def test_an_update_that_keeps_losing_raises_the_last_conflict(bus: Bus, run_id: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tickets.store")
    await TicketStore(bus, run_id).save(Ticket.open(opened("tk-lose"), run=run_id))
    store = Overtaken(bus, run_id, times=99)
    with pytest.raises(ConcurrencyConflict):
        await store.update("tk-lose", lambda t: t.recur({"mine": True}), attempts=3)
    assert store.loads == 3, "three attempts in all, each on a fresh load"
    assert [fields(r) for r in caplog.records if r.getMessage() == "ticket conflict"] == [
        {"ticket": "tk-lose", "attempt": n} for n in (1, 2, 3)]
    history = await bus.read_subject(ticket_subject(run_id, "tk-lose"))
    assert [d.event.data.evidence for d in history[1:]] == [{"rival": n} for n in (1, 2, 3)], "nothing of ours stored"


async def test_a_refused_command_is_not_retried(bus: Bus, run_id: str) -> None:
    await TicketStore(bus, run_id).save(Ticket.open(opened("tk-refused"), run=run_id))
    store = Overtaken(bus, run_id, times=99)
    with pytest.raises(IllegalTransition):  # not claimed: a fresh load would say the same
        await store.update("tk-refused", lambda t: t.resolve_by_agent("a1"))
    assert store.loads == 1


async def test_an_update_that_wins_a_later_attempt_is_stored_once_on_fresh_state(bus: Bus, run_id: str) -> None:
    await TicketStore(bus, run_id).save(Ticket.open(opened("tk-win"), run=run_id))
    store = Overtaken(bus, run_id, times=2)
    stored = await store.update("tk-win", lambda t: t.claim("a1", "rules", utcnow() + timedelta(seconds=30)))
    assert [e.type for e in stored] == ["ticket.claimed"] and store.loads == 3
    history = await bus.read_subject(ticket_subject(run_id, "tk-win"))
    assert [d.event.type for d in history] == ["ticket.opened", "ticket.recurred", "ticket.recurred",
                                               "ticket.claimed"]
    assert history[-1].event.causation == history[-2].event.id  # saved on the state it last read

"""The Ticket aggregate: its lifecycle, and JetStream as its store."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from events import TicketOpened
from events.bus import Bus, ConcurrencyConflict
from events.envelope import utcnow
from events.subjects import ticket_subject
from tickets import IllegalTransition, Ticket, TicketStatus, TicketStore


def opened(ticket_id: str = "tk-1") -> TicketOpened:
    return TicketOpened(ticket_id=ticket_id, invariant="node_down", entity="node-2",
                        subject="ratelimiter", summary="node-2 is down", first_seen=utcnow())


def lease() -> object:
    return utcnow() + timedelta(seconds=30)


def test_the_happy_path_ends_resolved_by_the_agent() -> None:
    t = Ticket.open(opened())
    t.claim("a1", "rules", lease())
    t.diagnose("a1", "node-2 process is not running", {})
    t.record_action("a1", "x1", "restart_node", {"node": "node-2"}, True, "started")
    t.verify("a1", {"cleared": True})
    t.resolve_by_agent("a1")
    assert t.status == TicketStatus.RESOLVED
    assert t.state.resolved_by == "agent"
    assert [type(e).__name__ for e in t.collect_events()] == ["Opened"] + ["Recorded"] * 5


@pytest.mark.parametrize("command", [
    lambda t: t.resolve_by_agent("a1"),           # not claimed
    lambda t: t.diagnose("a1", "h", {}),          # not claimed
    lambda t: t.verify("a1", {}),                  # not claimed
    lambda t: t.reopen("why"),                     # not closed
])
def test_commands_out_of_order_are_illegal(command) -> None:  # type: ignore[no-untyped-def]
    t = Ticket.open(opened())
    with pytest.raises(IllegalTransition):
        command(t)


def test_only_the_holder_may_act_and_resolution_needs_verification() -> None:
    t = Ticket.open(opened())
    t.claim("a1", "rules", lease())
    with pytest.raises(IllegalTransition):
        t.claim("a2", "rules", lease())
    with pytest.raises(IllegalTransition):
        t.diagnose("a2", "h", {})
    with pytest.raises(IllegalTransition):
        t.resolve_by_agent("a1")
    with pytest.raises(IllegalTransition):
        t.resolve_self_healed()


def test_an_expired_lease_may_be_claimed_by_another_agent() -> None:
    t = Ticket.open(opened())
    t.claim("a1", "rules", utcnow() - timedelta(seconds=1))
    t.claim("a2", "rules", lease())
    assert t.state.claimed_by == "a2"


def test_only_the_holder_renews_its_lease_and_only_to_a_later_time() -> None:
    t = Ticket.open(opened())
    first = utcnow() + timedelta(seconds=5)
    t.claim("a1", "rules", first)
    t.renew_lease("a1", first + timedelta(seconds=30))
    assert t.state.lease_until == first + timedelta(seconds=30)
    assert not t.state.claimable(first + timedelta(seconds=10))  # the old lease would have run out here
    with pytest.raises(IllegalTransition):
        t.renew_lease("a2", first + timedelta(seconds=60))
    with pytest.raises(IllegalTransition):
        t.renew_lease("a1", first)
    t.escalate("gave up", agent="a1")
    with pytest.raises(IllegalTransition):
        t.renew_lease("a1", first + timedelta(seconds=90))


def test_escalated_is_final_until_reopened() -> None:
    t = Ticket.open(opened())
    t.claim("a1", "rules", lease())
    t.escalate("agent stopping", agent="a1")
    for command in (lambda: t.claim("a2", "rules", lease()), lambda: t.resolve_self_healed(),
                    lambda: t.escalate("again"), lambda: t.recur({})):
        with pytest.raises(IllegalTransition):
            command()
    t.reopen("operator asked")
    assert t.status == TicketStatus.OPEN


async def test_saved_tickets_load_back_identically(bus: Bus, run_id: str) -> None:
    store = TicketStore(bus, run_id)
    t = Ticket.open(opened(), run=run_id)
    t.claim("a1", "rules", lease())
    stored = await store.save(t)
    assert [e.type for e in stored] == ["ticket.opened", "ticket.claimed"]
    loaded = await TicketStore(bus, run_id).load("tk-1")
    assert loaded.state.model_dump(exclude={"opened_at", "updated_at"}) == \
        t.state.model_dump(exclude={"opened_at", "updated_at"})
    assert loaded.version == 2


async def test_two_agents_racing_for_one_ticket_exactly_one_wins(bus: Bus, run_id: str) -> None:
    await TicketStore(bus, run_id).save(Ticket.open(opened("tk-race"), run=run_id))

    async def try_claim(agent: str) -> bool:
        store = TicketStore(bus, run_id)
        ticket = await store.load("tk-race")
        try:
            ticket.claim(agent, "rules", lease())  # another claim may already be stored
            await store.save(ticket)
        except (ConcurrencyConflict, IllegalTransition):
            return False
        return True

    results = await asyncio.gather(*(try_claim(f"agent-{i}") for i in range(5)))
    assert sorted(results) == [False] * 4 + [True]
    history = await bus.read_subject(ticket_subject(run_id, "tk-race"))
    assert [d.event.type for d in history] == ["ticket.opened", "ticket.claimed"]


async def test_concurrent_updates_retry_on_fresh_state(bus: Bus, run_id: str) -> None:
    await TicketStore(bus, run_id).save(Ticket.open(opened("tk-u"), run=run_id))
    stores = [TicketStore(bus, run_id) for _ in range(3)]  # 3 attempts: every contender gets in
    await asyncio.gather(*(s.update("tk-u", lambda t: t.recur({"n": 1})) for s in stores))
    history = await bus.read_subject(ticket_subject(run_id, "tk-u"))
    assert [d.event.type for d in history] == ["ticket.opened"] + ["ticket.recurred"] * 3
    # a retry after a lost race is caused by the event it lost to, not by the one it first read
    assert [d.event.causation for d in history[1:]] == [d.event.id for d in history[:-1]]


async def test_each_stored_ticket_event_is_caused_by_the_tickets_previous_event(bus: Bus, run_id: str) -> None:
    store = TicketStore(bus, run_id)
    t = Ticket.open(opened("tk-c"), run=run_id)
    t.claim("a1", "rules", lease())
    opened_event, claimed = await store.save(t, causation="violation-event-id")
    assert opened_event.causation == "violation-event-id"  # an explicit cause, for the first of the save
    assert claimed.causation == opened_event.id  # the rest chain one to the next
    [diagnosed] = await TicketStore(bus, run_id).update("tk-c", lambda t: t.diagnose("a1", "down", {}))
    assert diagnosed.causation == claimed.id  # the event the ticket was loaded at
    [escalated] = await store.update("tk-c", lambda t: t.escalate("gave up", agent="a1"), causation="cleared-id")
    assert escalated.causation == "cleared-id"
    history = await bus.read_subject(ticket_subject(run_id, "tk-c"))
    assert [d.event.causation for d in history] == ["violation-event-id", opened_event.id, claimed.id, "cleared-id"]


async def test_update_judges_legality_on_fresh_state(bus: Bus, run_id: str) -> None:
    await TicketStore(bus, run_id).save(Ticket.open(opened("tk-l"), run=run_id))
    first, second = TicketStore(bus, run_id), TicketStore(bus, run_id)
    await first.update("tk-l", lambda t: t.claim("a1", "rules", lease()))
    with pytest.raises(IllegalTransition):
        await second.update("tk-l", lambda t: t.claim("a2", "rules", lease()))

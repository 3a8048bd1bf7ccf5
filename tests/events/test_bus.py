"""The bus against a real nats-server: stored once, ordered replay, concurrency, rejection."""

from __future__ import annotations

import asyncio

import pytest

from events import EventRejected, RunStarted, ServiceHeartbeat, TicketClaimed, TicketOpened
from events.bus import Bus, ConcurrencyConflict
from events.envelope import utcnow
from events.replay import Delivered
from events.subjects import run_events, run_type, ticket_subject


def heartbeat(bus: Bus, run: str, n: int):
    return bus.event(ServiceHeartbeat(service="t", instance="i", version="1", pid=n, uptime_s=n),
                     run=run)


class Kept:
    """A handler that keeps every delivery it is given; ``enough`` is set once it holds ``wanted``."""

    def __init__(self, wanted: int = 1) -> None:
        self.got: list[Delivered] = []
        self.wanted = wanted
        self.enough = asyncio.Event()

    async def __call__(self, d: Delivered) -> None:
        self.got.append(d)
        if len(self.got) >= self.wanted:
            self.enough.set()


async def collect(bus: Bus, subject: str | list[str], **kw) -> list[Delivered]:
    kept = Kept()
    await bus.replay(subject, kept, **kw)
    return kept.got


async def test_a_retried_publish_is_stored_once(bus: Bus, run_id: str) -> None:
    event = heartbeat(bus, run_id, 1)
    first = await bus.publish(event)
    again = await bus.publish(event)
    assert first == again
    assert [d.event.id for d in await collect(bus, run_events(run_id))] == [event.id]


async def test_replay_is_ordered_and_filtered_by_run(bus: Bus, run_id: str) -> None:
    other = run_id + "x"
    events = [heartbeat(bus, run_id, n) for n in range(50)]
    await bus.publish_batch(events)
    await bus.publish(heartbeat(bus, other, 99))
    got = await collect(bus, run_events(run_id))
    assert [d.event.id for d in got] == [e.id for e in events]
    assert [d.seq for d in got] == sorted(d.seq for d in got)


async def test_replay_of_several_subjects_keeps_one_stream_order(bus: Bus, run_id: str) -> None:
    now = utcnow()
    opened = [TicketOpened(ticket_id=f"tk-{n}", invariant="node_down", entity="node-1", subject="ratelimiter",
                           summary="down", first_seen=now) for n in range(3)]
    mixed = []
    for n, ticket in enumerate(opened):  # tickets and heartbeats interleaved, plus a run event
        mixed += [bus.event(ticket, run=run_id), heartbeat(bus, run_id, n)]
    mixed.append(bus.event(RunStarted(scenario="s", subject="ratelimiter", fault="f"), run=run_id))
    await bus.publish_batch(mixed)
    got = await collect(bus, [run_type(run_id, TicketOpened), run_type(run_id, RunStarted)])
    assert [d.event.type for d in got] == ["ticket.opened"] * 3 + ["run.started"]
    assert [d.event.id for d in got] == [e.id for e in mixed if e.type != "svc.heartbeat"]
    assert [d.seq for d in got] == sorted(d.seq for d in got)


async def test_replay_from_a_sequence_skips_what_came_before(bus: Bus, run_id: str) -> None:
    seqs = await bus.publish_batch([heartbeat(bus, run_id, n) for n in range(10)])
    got = await collect(bus, run_events(run_id), from_seq=seqs[5])
    assert [d.seq for d in got] == seqs[5:]


async def test_replay_of_an_empty_run_returns_at_once(bus: Bus, run_id: str) -> None:
    assert await asyncio.wait_for(collect(bus, run_events(run_id)), 5) == []


async def test_run_history_is_the_runs_stored_events_with_their_sequences_in_order(bus: Bus, run_id: str) -> None:
    events = [heartbeat(bus, run_id, n) for n in range(20)]
    seqs = await bus.publish_batch(events[:10])
    await bus.publish(heartbeat(bus, run_id + "x", 99))  # another run's, in between
    await bus.nc.publish(f"lab.{run_id}.svc.heartbeat", b"\x00not json")  # no event: skipped, as by replay
    seqs += await bus.publish_batch(events[10:])
    history = await bus.run_history(run_id)
    assert [seq for seq, _ in history] == seqs
    assert [e.id for _, e in history] == [e.id for e in events]
    assert await bus.run_history(run_id + "-none") == []


async def test_follow_delivers_history_then_live_events(bus: Bus, run_id: str) -> None:
    await bus.publish(heartbeat(bus, run_id, 1))
    history_and_live = Kept(wanted=2)
    replay = await bus.replay(run_events(run_id), history_and_live, follow=True)
    await asyncio.wait_for(replay.caught_up.wait(), 5)
    await bus.publish(heartbeat(bus, run_id, 2))
    await asyncio.wait_for(history_and_live.enough.wait(), 5)
    await replay.stop()
    assert [d.event.data.pid for d in history_and_live.got] == [1, 2]


async def test_expected_last_subject_sequence_gives_optimistic_concurrency(
    bus: Bus, run_id: str
) -> None:
    opened = bus.event(TicketOpened(ticket_id="tk-1", invariant="i", entity="e", subject="s",
                                    summary="x", first_seen=utcnow()), run=run_id)
    seq = await bus.publish(opened, expected_last_subject_seq=0)
    with pytest.raises(ConcurrencyConflict):
        await bus.publish(opened.model_copy(update={"id": "other"}), expected_last_subject_seq=0)
    claim = TicketClaimed(ticket_id="tk-1", agent="a", policy="rules", lease_until=utcnow())
    await bus.publish(bus.event(claim, run=run_id), expected_last_subject_seq=seq)
    with pytest.raises(ConcurrencyConflict):
        await bus.publish(bus.event(claim, run=run_id), expected_last_subject_seq=seq)
    history = await bus.read_subject(ticket_subject(run_id, "tk-1"))
    assert [d.event.type for d in history] == ["ticket.opened", "ticket.claimed"]


async def test_garbage_and_failing_handlers_become_rejected_events(bus: Bus, run_id: str) -> None:
    await bus.nc.publish(f"lab.{run_id}.svc.heartbeat", b"\x00not json")
    await bus.js.publish(f"lab.{run_id}.svc.heartbeat", b"{}")
    await bus.publish(bus.event(RunStarted(scenario="s", subject="x"), run=run_id))
    handled: list[str] = []

    async def handle(d: Delivered) -> None:
        handled.append(d.event.type)
        if d.event.type == "run.started":
            raise RuntimeError("boom")

    rejected = Kept(wanted=3)
    watch = await bus.replay(run_type(run_id, EventRejected), rejected, follow=True)
    sub = await bus.consume(f"test-{run_id}", f"lab.{run_id}.run.>", handle)
    other = await bus.consume(f"test2-{run_id}", f"lab.{run_id}.svc.>", handle)
    await asyncio.wait_for(rejected.enough.wait(), 15)
    await sub.unsubscribe()
    await other.unsubscribe()
    await watch.stop()
    reasons = sorted(d.event.data.reason for d in rejected.got)
    assert any("handler failed" in r for r in reasons)
    assert any("not JSON" in r or "missing" in r for r in reasons)
    assert handled.count("run.started") == bus.settings.max_deliver


async def test_replay_from_a_time_skips_what_came_before(bus: Bus, run_id: str) -> None:
    await bus.publish_batch([heartbeat(bus, run_id, n) for n in range(3)])
    later = [heartbeat(bus, run_id, n) for n in range(3, 6)]
    cut = later[0].time
    await bus.publish_batch(later)
    got = await collect(bus, run_events(run_id), from_time=cut)
    assert [d.event.data.pid for d in got] == [3, 4, 5]


async def test_a_failing_replay_handler_neither_stalls_nor_hides_the_rest(bus: Bus, run_id: str) -> None:
    await bus.publish_batch([heartbeat(bus, run_id, n) for n in range(5)])
    seen: list[int] = []

    async def handle(d: Delivered) -> None:
        if d.event.data.pid == 4:
            raise RuntimeError("bad last event")
        seen.append(d.event.data.pid)

    replay = await asyncio.wait_for(bus.replay(run_events(run_id), handle), 10)
    assert seen == [0, 1, 2, 3]
    assert replay.errors == 1 and replay.delivered == 5


async def test_garbage_in_a_followed_run_is_recorded_by_the_rejecter(bus: Bus, run_id: str) -> None:
    rejected = Kept()

    async def ignore(d: Delivered) -> None:
        return None

    watch = await bus.replay(run_type(run_id, EventRejected), rejected, follow=True)
    feed = await bus.replay(f"lab.{run_id}.svc.>", ignore, follow=True, on_invalid=bus.rejecter("svc-x"))
    await bus.js.publish(f"lab.{run_id}.svc.heartbeat", b"garbage")
    await asyncio.wait_for(rejected.enough.wait(), 10)
    await feed.stop()
    await watch.stop()
    assert rejected.got[0].event.data.consumer == "svc-x"
    assert "not JSON" in rejected.got[0].event.data.reason

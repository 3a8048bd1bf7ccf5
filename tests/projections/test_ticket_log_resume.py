"""The ticket log resumes where it stopped: a view reopened mid-stream, or followed live and then
resumed, ends with the rows of one fold from sequence 1, and folds nothing twice.

SQLite and PostgreSQL views (the stores that outlive a process), as ``tests/projections/conftest.py``
opens them; events on a real nats-server.
"""

from __future__ import annotations

import asyncio

import pytest

from events import new_ticket_id
from events.bus import Bus
from events.subjects import run_events
from projections.ticket_log import TicketLogFeeder, follow
from tests.projections.ticket_scripts import (
    TicketRun,
    escalated_path,
    every_path,
    feeder_of,
    happy_path,
    interleave,
    project,
    self_healed_then_reopened,
)
from tests.projections.ticket_stores import ViewFactory


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("k", [1, 7, 19])
async def test_a_restart_mid_stream_resumes_to_the_same_rows(ticket_run: TicketRun,
                                                             make_view: ViewFactory, k: int) -> None:
    await ticket_run.publish(every_path(new_ticket_id(), new_ticket_id(), new_ticket_id()))
    ds = await ticket_run.deliveries()

    before = make_view("resumed")
    for i in range(0, k, 3):  # stop after k events, committed in batches of 3
        project(before, ds[i:min(i + 3, k)])
    assert before.max_tracking_id() == ds[k - 1].seq
    before.close()

    after = make_view("resumed")  # the same store, reopened
    assert after.max_tracking_id() == ds[k - 1].seq
    assert await ticket_run.fold(after, batch_size=4) == len(ds) - k

    single = make_view("single")
    assert await ticket_run.fold(single) == len(ds)
    assert after.dump_rows() == single.dump_rows()
    assert after.max_tracking_id() == single.max_tracking_id() == ds[-1].seq
    assert await ticket_run.fold(after) == 0  # caught up: nothing folded twice


async def wait_committed(feeder: TicketLogFeeder, seq: int, timeout: float = 10.0) -> None:
    async def reached() -> None:
        while feeder.committed_seq < seq:
            feeder.progress.clear()
            if feeder.committed_seq >= seq:
                return
            await feeder.progress.wait()

    await asyncio.wait_for(reached(), timeout)


async def test_a_rebuild_from_sequence_one_equals_the_incremental_view(
        bus: Bus, run_id: str, ticket_run: TicketRun, make_view: ViewFactory) -> None:
    incremental = make_view("incremental")
    feeder = feeder_of(incremental, batch_size=5, flush_interval_s=0.01)
    stop = asyncio.Event()
    following = asyncio.create_task(follow(bus, feeder, stop, filter_subject=run_events(run_id)))
    ids = [new_ticket_id() for _ in range(6)]
    for burst in (interleave(happy_path(ids[0]), escalated_path(ids[1])),
                  interleave(happy_path(ids[2]), self_healed_then_reopened(ids[3])),
                  interleave(happy_path(ids[4]), happy_path(ids[5]))):
        seqs = await ticket_run.publish(burst)
        await wait_committed(feeder, seqs[-1])
    stop.set()
    await asyncio.wait_for(following, 10)
    assert feeder.batches > 1

    # resume following from the tracked position (at the stream's end), then more events arrive
    feeder, stop = feeder_of(incremental, flush_interval_s=0.01), asyncio.Event()
    following = asyncio.create_task(follow(bus, feeder, stop, filter_subject=run_events(run_id)))
    seqs = await ticket_run.publish(escalated_path(ids[0])[1:])  # ids[0] already resolved: recorded anyway
    await wait_committed(feeder, seqs[-1])
    stop.set()
    await asyncio.wait_for(following, 10)
    assert feeder.events == 2

    rebuilt = make_view("rebuilt")
    await ticket_run.fold(rebuilt)
    assert rebuilt.dump_rows() == incremental.dump_rows()
    assert len(rebuilt.dump_rows()) == 6

    incremental.clear()
    assert (incremental.max_tracking_id(), incremental.dump_rows()) == (None, [])
    await ticket_run.fold(incremental)
    assert incremental.dump_rows() == rebuilt.dump_rows()

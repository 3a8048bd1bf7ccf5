"""Feeding the ticket log: a catch-up through a reader process folds exactly what a plain
per-event fold does, resumes from its tracked position, and never buffers beyond its bound.
``head_start=False`` makes the reader process read everything (by default this process reads
while the reader starts, and on small logs it finishes first).

The module has a nats-server of its own, so it can fold the whole log (``lab.>``, the
projector's filter) the way a rebuild does: several runs, ticket and other events, garbage.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from events import TicketPayload, new_event, new_run_id, new_ticket_id
from events.bus import Bus
from events.codec import InvalidEvent
from events.raw_reader import RawReader
from events.replay import Delivered
from events.settings import BusSettings
from events.structured_logging import fields
from events.subjects import ALL_EVENTS, event_subject
from events.waiting import wait_until
from oplab.infra import start_nats
from projections.ticket_log import (
    POPOTicketLogView,
    SQLiteTicketLogView,
    TicketLogFeeder,
    TicketLogProjection,
    TicketLogView,
    catch_up,
    to_row,
)
from tests.projections.ticket_scripts import TicketRun, every_path, feeder_of, orphan
from tickets.state import TicketState, apply_event

GARBAGE_PER_RUN = 3
SQLITE_FILE = "ticketlog.sqlite"


@pytest.fixture(scope="module")
async def own_bus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bus]:
    """A bus on a nats-server of this module's own, whose whole log its tests fold."""
    server = start_nats(tmp_path_factory.mktemp("feed-nats"))
    try:
        bus = await Bus.connect(BusSettings(nats_url=server.url), source="tests")
        yield bus
        await bus.close()
    finally:
        server.stop()


@pytest.fixture
def sqlite_view(tmp_path: Path) -> Iterator[TicketLogView]:
    view = SQLiteTicketLogView.open(tmp_path / SQLITE_FILE)
    yield view
    view.close()


def new_tickets(n: int) -> list[str]:
    """``n`` new ticket ids."""
    return [new_ticket_id() for _ in range(n)]


async def publish_run(bus: Bus, run: str, tickets: int) -> int:
    """A run's interleaved lifecycles with heartbeats, an orphan ticket event (no ``ticket.opened``:
    not foldable) and garbage; returns how many valid events were stored."""
    payloads = [orphan(new_ticket_id()), *every_path(*new_tickets(tickets))]
    half = len(payloads) // 2
    ticket_run = TicketRun(bus, run)
    await ticket_run.publish(payloads[:half])
    await bus.js.publish(f"lab.{run}.svc.heartbeat", b"\x00not json")
    await bus.js.publish(f"lab.{run}.ticket.tk-garbage", b'{"type": "ticket.opened", "run": "r", "data": {}}')
    await bus.js.publish(f"lab.{run}.svc.heartbeat", b'{"type": "no.such", "data": {}}')
    await ticket_run.publish(payloads[half:])
    return len(payloads)


@dataclass
class PlainFold:
    rows: list[dict[str, Any]]
    valid: int
    last_seq: int
    invalid: int


async def plain_fold(bus: Bus, upto: int | None = None) -> PlainFold:
    """The reference: every stored event (up to ``upto``) replayed in this process, folded one at a time."""
    states: dict[tuple[str, str], TicketState] = {}
    last: dict[tuple[str, str], int] = {}
    seen: list[int] = []

    def beyond(seq: int) -> bool:
        return upto is not None and seq > upto

    async def fold(d: Delivered) -> None:
        if beyond(d.seq):
            return
        seen.append(d.seq)
        payload = d.event.data
        if isinstance(payload, TicketPayload):
            key = (d.event.run, payload.ticket_id)
            try:
                states[key] = apply_event(states.get(key), payload, d.event.time, d.event.run)
            except ValueError:
                return
            last[key] = d.seq

    invalid: list[int] = []

    async def count_invalid(_invalid: InvalidEvent, seq: int, _subject: str) -> None:
        if not beyond(seq):
            invalid.append(seq)

    await bus.replay(ALL_EVENTS, fold, on_invalid=count_invalid)
    return PlainFold([to_row(states[k], last[k]) for k in sorted(states)], len(seen), max(seen), len(invalid))


async def test_a_catch_up_through_a_reader_process_gives_the_rows_of_a_plain_per_event_fold(
        own_bus: Bus, sqlite_view: TicketLogView) -> None:
    for _ in range(3):
        await publish_run(own_bus, new_run_id(), tickets=30)
    reference = await plain_fold(own_bus)

    feeder = feeder_of(sqlite_view, batch_size=50, max_batch=100)
    folded = await catch_up(own_bus, feeder, reader_process=True, head_start=False)

    assert sqlite_view.dump_rows() == reference.rows
    assert folded == reference.valid
    assert sqlite_view.tracked() == reference.last_seq
    assert feeder.invalid == 3 * GARBAGE_PER_RUN
    assert feeder.batches > 1


async def test_a_catch_up_in_this_process_gives_the_same_rows_and_counts(own_bus: Bus) -> None:
    await publish_run(own_bus, new_run_id(), tickets=12)
    reference = await plain_fold(own_bus)

    inline, through_reader = POPOTicketLogView(), POPOTicketLogView()
    inline_feeder = feeder_of(inline)
    reader_feeder = feeder_of(through_reader)
    assert await catch_up(own_bus, inline_feeder, reader_process=False) == reference.valid
    assert await catch_up(own_bus, reader_feeder, reader_process=True, head_start=False) == reference.valid

    assert inline.dump_rows() == through_reader.dump_rows() == reference.rows
    assert inline_feeder.invalid == reader_feeder.invalid > 0


async def test_a_catch_up_resumes_from_the_tracked_position_and_folds_each_event_once(
        own_bus: Bus, sqlite_view: TicketLogView) -> None:
    await publish_run(own_bus, new_run_id(), tickets=9)
    before = await plain_fold(own_bus)
    feeder = feeder_of(sqlite_view)
    assert await catch_up(own_bus, feeder, reader_process=True, head_start=False) == before.valid

    added = await publish_run(own_bus, new_run_id(), tickets=9)
    after = await plain_fold(own_bus)
    resumed = feeder_of(sqlite_view)
    assert await catch_up(own_bus, resumed, reader_process=True, head_start=False) == added
    assert resumed.invalid == GARBAGE_PER_RUN  # only the new part was read
    assert sqlite_view.dump_rows() == after.rows
    assert sqlite_view.tracked() == after.last_seq

    again = feeder_of(sqlite_view)
    assert await catch_up(own_bus, again, reader_process=True, head_start=False) == 0
    assert sqlite_view.dump_rows() == after.rows


@pytest.mark.parametrize(("reader_process", "head_start"), [(False, False), (True, False), (True, True)],
                         ids=["in-this-process", "reader-process", "reader-process-after-a-head-start"])
async def test_a_catch_up_up_to_a_sequence_folds_nothing_beyond_it_and_the_next_one_folds_the_rest(
        own_bus: Bus, sqlite_view: TicketLogView, reader_process: bool, head_start: bool) -> None:
    before_run = await own_bus.last_seq()
    half = await publish_run(own_bus, new_run_id(), tickets=12) // 2
    # a ticket event of the run's first half, then the second of the garbage messages after that half
    valid_upto, garbage_upto = before_run + 8, before_run + half + 2
    first, second = await plain_fold(own_bus, valid_upto), await plain_fold(own_bus, garbage_upto)
    reference = await plain_fold(own_bus)
    assert first.last_seq == valid_upto and second.last_seq == garbage_upto - 2
    assert first.rows != second.rows != reference.rows
    options: dict[str, Any] = {"reader_process": reader_process, "head_start": head_start}
    progress: list[tuple[int, int]] = []

    def report(done: int, to: int) -> None:
        progress.append((done, to))

    # a buffer that never fills: a head start (which hands over to the reader when it does) reaches the bound itself
    feeder = feeder_of(sqlite_view, batch_size=3, max_batch=3, max_pending=100_000)
    assert await catch_up(own_bus, feeder, upto=valid_upto, on_progress=report, **options) == first.valid
    assert feeder.invalid == first.invalid and feeder.batches > 1
    assert sqlite_view.dump_rows() == first.rows and sqlite_view.tracked() == valid_upto
    assert len(progress) > 1 and progress[-1] == (valid_upto, valid_upto)  # as it went, and at the end
    assert all(to == valid_upto for _, to in progress) and [d for d, _ in progress] == sorted(d for d, _ in progress)

    # up to a message that is no valid event: the view tracks the last valid one before it
    progress.clear()
    feeder = feeder_of(sqlite_view, batch_size=3, max_batch=3, max_pending=100_000)
    assert await catch_up(own_bus, feeder, upto=garbage_upto, on_progress=report, **options) \
        == second.valid - first.valid
    assert feeder.invalid == second.invalid - first.invalid == 2
    assert sqlite_view.dump_rows() == second.rows and sqlite_view.tracked() == second.last_seq
    assert progress[-1] == (garbage_upto, garbage_upto)

    # and without a bound, the rest: the rows of one catch-up of the whole log
    assert await catch_up(own_bus, feeder_of(sqlite_view), **options) == reference.valid - second.valid
    at_once = POPOTicketLogView()
    await catch_up(own_bus, feeder_of(at_once), **options)
    assert sqlite_view.dump_rows() == at_once.dump_rows() == reference.rows
    assert sqlite_view.tracked() == reference.last_seq

    # a bound the view has folded already: nothing to fold, nothing reported
    progress.clear()
    assert await catch_up(own_bus, feeder_of(sqlite_view), upto=valid_upto, on_progress=report, **options) == 0
    assert progress == [] and sqlite_view.tracked() == reference.last_seq


@dataclass
class BoundedFold:
    feeder: TicketLogFeeder
    rows: list[dict[str, Any]]
    reference: PlainFold


async def fold_through_a_small_buffer(bus: Bus, **catch_up_options: Any) -> BoundedFold:
    """A new run of 30 tickets, then the whole log folded through a feeder buffering 40 events at most
    (batches of 10 to 20); the feeder, the rows it folded and the reference fold."""
    await publish_run(bus, new_run_id(), tickets=30)
    reference = await plain_fold(bus)
    view = POPOTicketLogView()
    feeder = feeder_of(view, batch_size=10, max_batch=20, max_pending=40)
    await catch_up(bus, feeder, **catch_up_options)
    return BoundedFold(feeder, view.dump_rows(), reference)


async def test_the_feeder_never_buffers_beyond_its_bound_while_the_reader_runs_ahead(own_bus: Bus) -> None:
    folded = await fold_through_a_small_buffer(own_bus, reader_process=True, head_start=False)
    # a reader batch holds far more than 40 events: the buffer filled to its bound and no further
    assert folded.feeder.high_water == 40
    assert folded.rows == folded.reference.rows


async def test_the_bus_handler_waits_for_the_fold_when_the_buffer_is_full(own_bus: Bus) -> None:
    folded = await fold_through_a_small_buffer(own_bus, reader_process=False)
    assert 0 < folded.feeder.high_water <= 40
    assert folded.rows == folded.reference.rows


async def test_a_catch_up_that_starts_here_and_hands_over_to_the_reader_folds_each_event_once(
        own_bus: Bus, sqlite_view: TicketLogView) -> None:
    for _ in range(5):
        await publish_run(own_bus, new_run_id(), tickets=1000)  # long enough to outlast the reader's start
    reference = await plain_fold(own_bus)

    feeder = feeder_of(sqlite_view, batch_size=200, max_batch=500)
    assert await catch_up(own_bus, feeder, reader_process=True) == reference.valid

    assert sqlite_view.dump_rows() == reference.rows
    assert sqlite_view.tracked() == reference.last_seq
    assert feeder.invalid == reference.invalid


class HandoverFeeder(TicketLogFeeder):
    """A feeder that commits nothing until a reader process offers it a batch (a fold slower than
    the head start: the buffer fills), and records who offered what: the head start in this
    process offers one by one (``offer``), the reader process batch by batch (``offer_many``).
    The catch-up's end opens the gate too: a catch-up that never hands over fails, it does not hang."""

    def __init__(self, projection: TicketLogProjection, **options: Any) -> None:
        super().__init__(projection, **options)
        self.here: list[int] = []  #: sequences offered by the head start
        self.by_reader: list[int] = []  #: sequences offered by the reader process
        self.pending_at_handover: int | None = None  #: buffered when the reader offered first
        self.full = asyncio.Event()  #: the buffer held ``max_pending``
        self._folding = asyncio.Event()  #: commits may go on

    async def run(self, stop: asyncio.Event, *, bulk: bool = False) -> None:
        async def open_when_stopped() -> None:
            await stop.wait()
            self._folding.set()

        opener = asyncio.create_task(open_when_stopped())
        try:
            await super().run(stop, bulk=bulk)
        finally:
            opener.cancel()

    async def offer(self, delivered: Delivered) -> None:
        self.here.append(delivered.seq)
        await super().offer(delivered)
        if self.pending >= self.max_pending:
            self.full.set()

    async def offer_many(self, deliveries: Sequence[Delivered]) -> None:
        if self.pending_at_handover is None:
            self.pending_at_handover = self.pending
            self._folding.set()
        self.by_reader.extend(d.seq for d in deliveries)
        await super().offer_many(deliveries)

    async def flush(self, *, full_batches_only: bool = False) -> int:
        await self._folding.wait()
        return await super().flush(full_batches_only=full_batches_only)


async def test_a_head_start_that_fills_the_buffer_before_upto_hands_over_and_the_reader_stops_at_upto(
        own_bus: Bus, sqlite_view: TicketLogView, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="projections.ticket_log.reading")
    await publish_run(own_bus, new_run_id(), tickets=12)
    upto = await own_bus.last_seq() - 3  # the run ends with valid events: one a few before the end
    first, reference = await plain_fold(own_bus, upto), await plain_fold(own_bus)
    assert first.last_seq == upto and reference.last_seq > upto

    feeder = HandoverFeeder(TicketLogProjection(sqlite_view), batch_size=5, max_batch=5, max_pending=10)
    assert first.valid > feeder.max_pending  # the head start cannot reach upto: its buffer fills first
    # the reader is ready only once the head start has filled the buffer (it would be anyway: a process
    # starts in about half a second, a dozen messages replay in milliseconds), so the buffer, not the
    # reader's readiness, ends the head start
    wait_ready = RawReader.wait_ready

    async def ready_once_full(reader: RawReader) -> None:
        await feeder.full.wait()
        await wait_ready(reader)

    with monkeypatch.context() as patched:
        patched.setattr(RawReader, "wait_ready", ready_once_full)
        folded = await asyncio.wait_for(
            catch_up(own_bus, feeder, upto=upto, reader_process=True, head_start=True), 60)

    # the head start filled the buffer and no more; the reader went on right after it, up to upto
    assert len(feeder.here) == feeder.pending_at_handover == feeder.max_pending == feeder.high_water
    assert feeder.by_reader and feeder.by_reader[0] > feeder.here[-1] and feeder.by_reader[-1] == upto
    offered = feeder.here + feeder.by_reader
    assert offered == sorted(set(offered)) and len(offered) == first.valid  # each valid event once, no gap
    read = [r for r in caplog.records if r.getMessage() == "ticket log read by a reader process"]
    assert len(read) == 1 and fields(read[0])["messages"] >= len(feeder.by_reader) > 0
    # nothing beyond upto folded
    assert folded == first.valid and feeder.invalid == first.invalid
    assert sqlite_view.dump_rows() == first.rows and sqlite_view.tracked() == upto

    # and without a bound, the rest: the rows of one fold of the whole log
    assert await catch_up(own_bus, feeder_of(sqlite_view), reader_process=True) == reference.valid - first.valid
    assert sqlite_view.dump_rows() == reference.rows and sqlite_view.tracked() == reference.last_seq


def deliveries(run: str, tickets: int) -> list[Delivered]:
    """Tickets' lifecycles as the stream would deliver them (sequences from 1), without a stream."""
    events = [new_event(p, run=run, source="tests") for p in every_path(*new_tickets(tickets))]
    return [Delivered(e, seq, event_subject(e)) for seq, e in enumerate(events, 1)]


@pytest.fixture
def impatient_view(tmp_path: Path) -> Iterator[TicketLogView]:
    """A SQLite view in ``tmp_path`` that does not wait for a lock: while ``write_locked(tmp_path)``
    holds its database, each of its commits fails at once."""
    view = SQLiteTicketLogView.open(tmp_path / SQLITE_FILE, lock_timeout_s=0)
    yield view
    view.close()


@contextmanager
def write_locked(directory: Path) -> Iterator[None]:
    """Another connection holds the write lock of the view's database in ``directory`` while the
    block runs: every commit of the view fails ("database is locked") until it lets go."""
    blocker = sqlite3.connect(directory / SQLITE_FILE, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def commit_failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.getMessage() == "ticket log commit failed")


async def test_a_failed_commit_keeps_its_events_buffered_and_is_retried(
        impatient_view: TicketLogView, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="projections.ticket_log.feed")
    feeder = feeder_of(impatient_view)
    batch = deliveries(new_run_id(), tickets=6)
    with write_locked(tmp_path):
        await feeder.offer_many(batch)
        flushing = asyncio.create_task(feeder.flush())
        await wait_until(lambda: commit_failures(caplog), timeout=10, interval=0.01, what="a failed commit")
        # the retry waits 0.2 s; meanwhile the events are back in the buffer, counted against its bound
        assert feeder.pending == len(batch) and not flushing.done()
    assert await asyncio.wait_for(flushing, 30) == len(batch)
    assert feeder.pending == 0 and impatient_view.tracked() == len(batch)
    assert fields(caplog.records[0]) == {"failures": 1, "retry_in_s": pytest.approx(0.2)}


async def test_a_commit_that_keeps_failing_raises_after_max_failures_and_loses_nothing(
        impatient_view: TicketLogView, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="projections.ticket_log.feed")
    feeder = feeder_of(impatient_view, max_failures=3)
    batch = deliveries(new_run_id(), tickets=3)
    with write_locked(tmp_path):
        await feeder.offer_many(batch)
        with pytest.raises(OperationalError, match="locked"):
            await feeder.flush()
    # failures 1 and 2 were retried (after 0.2 s, then 0.4 s); the third one was raised
    assert [(r.getMessage(), fields(r)) for r in caplog.records] == [
        ("ticket log commit failed", {"failures": 1, "retry_in_s": pytest.approx(0.2)}),
        ("ticket log commit failed", {"failures": 2, "retry_in_s": pytest.approx(0.4)})]
    assert feeder.pending == len(batch) and impatient_view.tracked() == 0


def test_a_batch_the_store_refuses_is_tried_attempts_times_then_raised(
        impatient_view: TicketLogView, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="projections.ticket_log.projection")
    projection = TicketLogProjection(impatient_view, attempts=3)
    batch = deliveries(new_run_id(), tickets=2)
    with write_locked(tmp_path):
        with pytest.raises(OperationalError, match="locked"):
            projection.process_batch(batch)
        retried = [r for r in caplog.records if r.name == "projections.ticket_log.projection"]
        assert [(r.getMessage(), fields(r)["attempt"]) for r in retried] == [
            ("ticket log batch retried", 1), ("ticket log batch retried", 2)]
        assert all("locked" in fields(r)["error"] for r in retried)
    assert impatient_view.tracked() == 0  # nothing written
    # free again: one go
    assert projection.process_batch(batch) is not None and impatient_view.tracked() == len(batch)

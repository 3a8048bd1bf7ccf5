"""Feeding the ticket log from the bus: buffered, batched, off the event loop.

:class:`TicketLogFeeder` is the bus handler: it buffers deliveries and commits
them through :meth:`TicketLogProjection.process_batch` in a worker thread when
``batch_size`` are buffered, every ``flush_interval_s``, and on stop. One commit
runs at a time; deliveries keep arriving meanwhile and form the next batch, so
batches grow under load (up to ``max_batch`` events per transaction).

A commit that fails (store briefly unavailable) puts its events back and is
retried with back-off (0.2 s doubling, at most 5 s); after ``max_failures``
consecutive failures the error propagates (the service exits non-zero and,
restarted, resumes from the view's tracking position). Nothing is ever skipped
silently.

Memory is bounded: at most ``max_pending`` deliveries wait in the buffer; beyond that
:meth:`TicketLogFeeder.offer` waits for the fold (backpressure: the bus handler waits, nats-py's
flow control stalls the server). ``high_water`` says how full the buffer ever got.

:func:`follow` resumes from the view's ``max_tracking_id() + 1`` and keeps going
until ``stop`` is set; :func:`catch_up` folds what is stored and returns. A long catch-up
receives in a reader process (:mod:`events.raw_reader`) while this process decodes and folds
(docs/architecture.md, "Performance"); the rows are the same either way. A catch-up commits
full ``max_batch`` batches only (nobody waits for the newest event) and pauses the cyclic
garbage collector while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator, Sequence

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential

from events.bus import Bus
from events.codec import InvalidEvent, decode
from events.envelope import Event
from events.raw_reader import RawReader, RawReaderError, read_stored
from events.replay import Delivered
from events.subjects import ALL_EVENTS
from events.waiting import pause_unless
from projections.ticket_log.projection import TicketLogProjection
from projections.ticket_log.view import BatchChanges

log = logging.getLogger(__name__)


class TicketLogFeeder:
    """Buffers deliveries and folds them into ``projection`` in batches."""

    def __init__(self, projection: TicketLogProjection, *, batch_size: int = 1000,
                 max_batch: int = 10_000, flush_interval_s: float = 0.05,
                 max_failures: int = 20, max_pending: int | None = None) -> None:
        self.projection = projection
        self.batch_size = batch_size
        self.max_batch = max(max_batch, batch_size)
        self.flush_interval_s = flush_interval_s
        self.max_failures = max_failures
        #: deliveries buffered at most, then :meth:`offer` waits for the fold (default: two full
        #: batches; never less than one, so that a full buffer always holds a batch to commit)
        self.max_pending = max(max_pending or 2 * self.max_batch, self.max_batch)
        self.committed_seq = 0  #: highest sequence committed by this feeder
        self.events = 0  #: fresh events committed by this feeder
        self.batches = 0  #: transactions committed by this feeder
        self.invalid = 0  #: stored messages that were no valid event: logged and skipped, never folded
        self.high_water = 0  #: the most deliveries ever buffered at once (at most ``max_pending``)
        self.progress = asyncio.Event()  #: set after every commit (cleared by whoever waits on it)
        self._buffer: list[Delivered] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._lock = asyncio.Lock()
        self._broken: BaseException | None = None
        self._wake_at = self.batch_size  # buffered deliveries that wake the runner

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def offer(self, delivered: Delivered) -> None:
        """The bus handler: buffer one delivery. Waits while ``max_pending`` are buffered
        (until a commit takes a batch); raises if the fold has failed for good."""
        if len(self._buffer) >= self.max_pending:
            await self._wait_for_room()
        self._buffer.append(delivered)
        if len(self._buffer) > self.high_water:
            self.high_water = len(self._buffer)
        if len(self._buffer) >= self._wake_at:
            self._wake.set()

    async def offer_many(self, deliveries: Sequence[Delivered]) -> None:
        """:meth:`offer` for several deliveries in stream order, with the same bound."""
        taken = 0
        while taken < len(deliveries):
            room = self.max_pending - len(self._buffer)
            if room <= 0:
                await self._wait_for_room()
                continue
            chunk = deliveries[taken:taken + room]
            self._buffer.extend(chunk)
            taken += len(chunk)
            self.high_water = max(self.high_water, len(self._buffer))
            if len(self._buffer) >= self._wake_at:
                self._wake.set()

    def skip_invalid(self, invalid: InvalidEvent, seq: int, subject: str) -> None:
        """Count and log a stored message that is not a valid event (it is never folded)."""
        self.invalid += 1
        log.warning("ticket log skipped an invalid event",
                    extra={"seq": seq, "subject": subject, "reason": invalid.reason})

    async def on_invalid(self, invalid: InvalidEvent, seq: int, subject: str) -> None:
        """:meth:`skip_invalid` as ``Bus.replay``'s ``on_invalid`` handler."""
        self.skip_invalid(invalid, seq, subject)

    async def _wait_for_room(self) -> None:
        while len(self._buffer) >= self.max_pending:
            if self._broken is not None:
                raise RuntimeError("the ticket log fold stopped: nothing more can be buffered") from self._broken
            self._room.clear()
            self._wake.set()
            await self._room.wait()

    async def flush(self, *, full_batches_only: bool = False) -> int:
        """Commit everything buffered (or only as many full ``max_batch`` batches as are buffered);
        returns the number of fresh events committed."""
        least = self.max_batch if full_batches_only else 1
        async with self._lock:
            committed = 0
            while len(self._buffer) >= least:
                retrying = AsyncRetrying(retry=retry_if_exception_type(Exception),
                                         stop=stop_after_attempt(self.max_failures),
                                         wait=wait_exponential(multiplier=0.2, max=5.0),  # 0.1 s * 2^failures
                                         before_sleep=_log_commit_failure, reraise=True)
                batch, changes = await retrying(self._commit_next)
                committed += self._account(batch, changes)
            return committed

    async def _commit_next(self) -> tuple[list[Delivered], BatchChanges | None]:
        """One attempt to commit the next batch (the buffer's first ``max_batch``). A failed one
        puts its events back in front, in order, before raising: while the retry waits they count
        as buffered (``offer``'s bound holds), and the retry takes them (and maybe more) again."""
        batch = self._buffer[:self.max_batch]
        del self._buffer[:len(batch)]
        self._room.set()
        try:
            changes = await asyncio.to_thread(self.projection.process_batch, batch)
        except Exception:
            self._buffer[:0] = batch
            raise
        return batch, changes

    def _account(self, batch: Sequence[Delivered], changes: BatchChanges | None) -> int:
        self.committed_seq = max(self.committed_seq, max(d.seq for d in batch))
        self.progress.set()
        if changes is None:
            return 0
        self.batches += 1
        self.events += changes.events
        log.debug("ticket log batch committed", extra={
            "first_seq": changes.first_seq, "last_seq": changes.tracking.notification_id, "events": changes.events,
            "tickets": len(changes.rows), "skipped": changes.skipped})
        return changes.events

    async def run(self, stop: asyncio.Event, *, bulk: bool = False) -> None:
        """Flush on size or interval until ``stop`` is set, then flush once more.

        ``bulk`` (a catch-up: nobody waits for the newest event to show): commit only full
        ``max_batch`` batches until ``stop``: fewer, larger transactions, so fewer rows written
        and read again per event."""
        stopper = asyncio.create_task(_relay(stop, self._wake))
        self._wake_at = self.max_batch if bulk else self.batch_size
        try:
            while not stop.is_set():
                await pause_unless(self._wake, self.flush_interval_s)
                self._wake.clear()
                if self._buffer:
                    await self.flush(full_batches_only=bulk)
            await self.flush()
        except BaseException as exc:
            # whoever waits for room must not wait for ever on a fold that is gone
            self._broken = exc
            self._room.set()
            raise
        finally:
            stopper.cancel()
            self._wake_at = self.batch_size


def _log_commit_failure(state: RetryCallState) -> None:
    log.error("ticket log commit failed",
              extra={"failures": state.attempt_number, "retry_in_s": round(state.upcoming_sleep, 3)},
              exc_info=state.outcome.exception() if state.outcome else None)


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def follow(bus: Bus, feeder: TicketLogFeeder, stop: asyncio.Event, *,
                 filter_subject: str = ALL_EVENTS) -> None:
    """Fold the stream into the feeder's view from its tracked position until ``stop``.

    The view should always be fed the same ``filter_subject`` (the projector feeds
    ``lab.>``: the ticket log spans runs): its tracking position means "every
    matching event up to here is folded".

    The stored backlog is folded first by :func:`catch_up` (a large one through the reader
    process, whose memory is bounded), and only then is the stream followed live: a push replay
    of a backlog larger than nats-py's pending limits would lose messages silently.
    """
    view = feeder.projection.view
    started = time.monotonic()
    if not stop.is_set():
        await catch_up(bus, feeder, filter_subject=filter_subject)
    tracked = await asyncio.to_thread(view.tracked)
    replay = await bus.replay(filter_subject, feeder.offer, from_seq=tracked + 1, follow=True)
    log.info("ticket log following", extra={"subject": filter_subject, "from_seq": tracked + 1})

    async def report_caught_up() -> None:
        await replay.caught_up.wait()
        log.info("ticket log caught up", extra={"replayed": replay.delivered, "last_seq": replay.last_seq,
                                                "elapsed_s": round(time.monotonic() - started, 3)})

    reporter = asyncio.create_task(report_caught_up())
    try:
        await feeder.run(stop)
    finally:
        reporter.cancel()
        await replay.stop()
    await feeder.flush()  # what arrived between the last flush and the unsubscribe


async def catch_up(bus: Bus, feeder: TicketLogFeeder, *, filter_subject: str = ALL_EVENTS,
                   reader_process: bool | None = None, head_start: bool = True) -> int:
    """Fold every stored matching event after the view's tracked position; returns how many.

    ``reader_process``: receive in a reader process (:mod:`events.raw_reader`) while this one
    decodes and folds — True always, False never, None (default) when more than
    :data:`READER_PROCESS_FROM` messages may be waiting. ``head_start``: while the reader process
    starts (about half a second), replay in this process; the reader takes over from the next
    sequence. Stored messages that are no valid event are counted in ``feeder.invalid`` and skipped.
    The rows are the same whichever way the events came.
    """
    tracked = await asyncio.to_thread(feeder.projection.view.tracked)
    if reader_process is None:
        reader_process = await bus.last_seq() - tracked > READER_PROCESS_FROM
    before = feeder.events
    stop = asyncio.Event()
    runner = asyncio.create_task(feeder.run(stop, bulk=True))
    try:
        with _collector_paused():
            if reader_process:
                await _fold_from_reader_process(bus, feeder, filter_subject, tracked + 1, head_start=head_start)
            else:
                await bus.replay(filter_subject, feeder.offer, from_seq=tracked + 1,
                                 on_invalid=feeder.on_invalid)
    finally:
        stop.set()
        await runner
    return feeder.events - before


#: above this many possibly waiting messages, :func:`catch_up` starts a reader process
READER_PROCESS_FROM = 20_000

_paused = 0  # catch-ups under way with the collector paused
_collector_was_enabled = True


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a catch-up runs. Its events are freed by
    reference counting; the collector would only walk each of them, again and again, while they
    wait in the buffer (measured: about a tenth of a catch-up's time, for nothing). When the last
    catch-up under way ends, the collector is as it was before the first began."""
    global _paused, _collector_was_enabled
    if _paused == 0:
        _collector_was_enabled = gc.isenabled()
        gc.disable()
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1
        if _paused == 0 and _collector_was_enabled:
            gc.enable()


async def _fold_from_reader_process(bus: Bus, feeder: TicketLogFeeder, filter_subject: str, from_seq: int, *,
                                    head_start: bool) -> None:
    """Receive in a reader process, decode here and hand over to the feeder, batch by batch: the
    pipe, the feeder's bound and nats-py's flow control keep every stage's memory bounded.

    The reader process takes about half a second to start; meanwhile this process replays by
    itself, and the reader takes over right after the last sequence offered. If the reader cannot
    start, this process replays on alone."""
    async with read_stored(bus.settings, filter_subject, from_seq=None) as reader:
        offered: int | None = from_seq - 1
        if head_start:
            offered = await _replay_until_ready(bus, feeder, filter_subject, from_seq, reader)
        if offered is None:
            return  # the history ended before the reader was ready
        await reader.start(offered + 1)
        async for batch in reader.batches():
            deliveries: list[Delivered] = []
            for seq, subject, data in batch:
                decoded = decode(data)
                if isinstance(decoded, Event):
                    deliveries.append(Delivered(decoded, seq, subject))
                else:
                    feeder.skip_invalid(decoded, seq, subject)
            await feeder.offer_many(deliveries)
        log.info("ticket log read by a reader process", extra={
            "pid": reader.pid, "messages": reader.stats.messages, "batches": reader.stats.batches,
            "largest_batch_bytes": reader.stats.high_water_bytes, "reader": reader.stats.child})


async def _replay_until_ready(bus: Bus, feeder: TicketLogFeeder, filter_subject: str, from_seq: int,
                              reader: RawReader) -> int | None:
    """Replay in this process from ``from_seq`` until ``reader`` is ready (or the feeder's buffer
    is full: this replay's handler must not wait, or nats-py would queue up behind it); returns
    the last sequence taken (``from_seq - 1`` if none), or None if the history ended first. A
    reader that fails to start is logged, and this process replays the rest itself (None)."""
    last = from_seq - 1
    handing_over = False
    offering = asyncio.Lock()
    full = asyncio.Event()

    async def offer(delivered: Delivered) -> None:
        nonlocal last, handing_over
        async with offering:
            if handing_over or feeder.pending >= feeder.max_pending:
                # not taken: the reader reads from last + 1 (taking this too could fold it twice)
                handing_over = True
                full.set()
                return
            await feeder.offer(delivered)
            last = delivered.seq

    async def skip_invalid(invalid: InvalidEvent, seq: int, subject: str) -> None:
        nonlocal last
        async with offering:
            if not handing_over:
                feeder.skip_invalid(invalid, seq, subject)
                last = seq

    replay = await bus.replay(filter_subject, offer, from_seq=from_seq, follow=True, on_invalid=skip_invalid)
    ready = asyncio.create_task(reader.wait_ready())
    waits = [asyncio.create_task(replay.caught_up.wait()), asyncio.create_task(full.wait())]
    try:
        await asyncio.wait({ready, *waits}, return_when=asyncio.FIRST_COMPLETED)
        handing_over = True
        async with offering:  # an offer under way completes first
            await replay.stop()
        if replay.caught_up.is_set() and replay.last_seq <= last:
            ready.cancel()
            return None  # caught up, the last message taken (not one left while handing over)
        try:
            await ready
        except RawReaderError as exc:
            log.warning("ticket log reader process unavailable: replaying in this process", extra={"error": str(exc)})
            await bus.replay(filter_subject, feeder.offer, from_seq=last + 1, on_invalid=feeder.on_invalid)
            return None
        return last
    finally:
        for task in (ready, *waits):
            task.cancel()

"""Reading the stream into the ticket log: the stored backlog, then live.

:func:`catch_up` folds what is stored (after the view's tracked position, up to a given
sequence if asked) and returns; :func:`follow` catches up, then keeps going from the view's
position until ``stop`` is set. A long catch-up receives in a reader process
(:mod:`events.raw_reader`) while this process decodes and folds (docs/architecture.md,
"Performance"); the rows are the same either way. A catch-up commits full ``max_batch`` batches
only (nobody waits for the newest event) and pauses the cyclic garbage collector while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator

from events.bus import Bus
from events.codec import InvalidEvent, decode
from events.envelope import Event
from events.raw_reader import RawReader, RawReaderError, read_stored
from events.replay import Delivered
from events.subjects import ALL_EVENTS
from projections.ticket_log.feed import TicketLogFeeder

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called as a catch-up folds: (sequence committed so far, sequence it folds up to)."""


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
                   upto: int | None = None, on_progress: Progress | None = None,
                   reader_process: bool | None = None, head_start: bool = True) -> int:
    """Fold every stored matching event after the view's tracked position, up to and including
    sequence ``upto`` if given (or the stream's end, if that comes first); returns how many.

    Nothing beyond ``upto`` is folded: the view then tracks the last valid matching event up to it
    (``upto`` itself if that is one), and a later catch-up folds the rest as if there had been one
    catch-up only. An ``upto`` the view has folded already folds nothing and reports nothing.
    ``on_progress`` is called with (sequence committed so far, target) as the fold advances, and
    with (target, target) once it is done; the target is ``upto``, or without it the stream's last
    sequence when the catch-up began. If ``on_progress`` raises, it is called no more, the fold
    still completes, and the catch-up then raises its error.

    ``reader_process``: receive in a reader process (:mod:`events.raw_reader`) while this one
    decodes and folds — True always, False never, None (default) when more than
    :data:`READER_PROCESS_FROM` messages may be waiting (up to ``upto``). ``head_start``: while the
    reader process starts (about half a second), replay in this process; the reader takes over from
    the next sequence. Stored messages that are no valid event are counted in ``feeder.invalid``
    and skipped. The rows are the same whichever way the events came.
    """
    tracked = await asyncio.to_thread(feeder.projection.view.tracked)
    if upto is not None and upto <= tracked:
        return 0  # folded that far already
    stream_end = await bus.last_seq()
    target = stream_end if upto is None else upto
    if reader_process is None:
        reader_process = min(target, stream_end) - tracked > READER_PROCESS_FROM
    before = feeder.events
    stop = asyncio.Event()
    runner = asyncio.create_task(feeder.run(stop, bulk=True))
    feeder.progress.clear()  # a reused feeder's last commit was reported by an earlier catch-up
    reporter = None if on_progress is None else asyncio.create_task(_report_progress(feeder, target, on_progress))
    try:
        with _collector_paused():
            if reader_process:
                await _fold_from_reader_process(bus, feeder, filter_subject, tracked + 1, upto,
                                                head_start=head_start)
            else:
                await _replay_here(bus, feeder, filter_subject, tracked + 1, upto)
    finally:
        stop.set()
        try:
            await runner
        finally:
            if reporter is not None:
                reporter.cancel()
                await asyncio.wait({reporter})
    if on_progress is not None and reporter is not None:
        if not reporter.cancelled():
            reporter.result()  # on_progress raised (the fold went on to the end): so does the catch-up
        on_progress(target, target)
    return feeder.events - before


async def _report_progress(feeder: TicketLogFeeder, target: int, on_progress: Progress) -> None:
    """``on_progress(sequence committed so far, target)`` after each of the feeder's commits, until cancelled."""
    while True:
        await feeder.progress.wait()
        feeder.progress.clear()
        on_progress(min(feeder.committed_seq, target), target)


async def _replay_here(bus: Bus, feeder: TicketLogFeeder, filter_subject: str, from_seq: int,
                       upto: int | None) -> None:
    """Replay in this process from ``from_seq`` up to ``upto`` inclusive (None: the stream's end),
    offering each event to the feeder; nothing beyond ``upto`` is offered."""
    ended = asyncio.Event()

    async def offer(delivered: Delivered) -> None:
        if upto is not None and delivered.seq > upto:
            ended.set()
            return
        await feeder.offer(delivered)
        if delivered.seq == upto:
            ended.set()

    async def skip_invalid(invalid: InvalidEvent, seq: int, subject: str) -> None:
        if upto is not None and seq > upto:
            ended.set()
            return
        feeder.skip_invalid(invalid, seq, subject)
        if seq == upto:
            ended.set()

    replay = await bus.replay(filter_subject, offer, from_seq=from_seq, follow=True, on_invalid=skip_invalid)
    waits = {asyncio.create_task(ended.wait()), asyncio.create_task(replay.caught_up.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
        await replay.stop()


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


async def _fold_from_reader_process(bus: Bus, feeder: TicketLogFeeder, filter_subject: str, from_seq: int,
                                    upto: int | None, *, head_start: bool) -> None:
    """Receive in a reader process, decode here and hand over to the feeder, batch by batch: the
    pipe, the feeder's bound and nats-py's flow control keep every stage's memory bounded.

    The reader process takes about half a second to start; meanwhile this process replays by
    itself, and the reader takes over right after the last sequence offered. If the reader cannot
    start, this process replays on alone. Nothing beyond ``upto`` (if given) is offered: once a
    batch reaches it, the reader is stopped."""
    async with read_stored(bus.settings, filter_subject, from_seq=None) as reader:
        offered: int | None = from_seq - 1
        if head_start:
            offered = await _replay_until_ready(bus, feeder, filter_subject, from_seq, upto, reader)
        if offered is None:
            return  # the history (or what is wanted of it) ended before the reader was ready
        await reader.start(offered + 1)
        async with contextlib.aclosing(reader.batches()) as batches:
            async for batch in batches:
                deliveries: list[Delivered] = []
                for seq, subject, data in batch:
                    if upto is not None and seq > upto:
                        break
                    decoded = decode(data)
                    if isinstance(decoded, Event):
                        deliveries.append(Delivered(decoded, seq, subject))
                    else:
                        feeder.skip_invalid(decoded, seq, subject)
                await feeder.offer_many(deliveries)
                if upto is not None and batch and batch[-1][0] >= upto:
                    break  # leaving the block stops the reader: it reads no further
        log.info("ticket log read by a reader process", extra={
            "pid": reader.pid, "messages": reader.stats.messages, "batches": reader.stats.batches,
            "largest_batch_bytes": reader.stats.high_water_bytes, "reader": reader.stats.child})


async def _replay_until_ready(bus: Bus, feeder: TicketLogFeeder, filter_subject: str, from_seq: int,
                              upto: int | None, reader: RawReader) -> int | None:
    """Replay in this process from ``from_seq`` until ``reader`` is ready (or the feeder's buffer
    is full: this replay's handler must not wait, or nats-py would queue up behind it); returns
    the last sequence taken (``from_seq - 1`` if none), or None if the history ended first, or
    everything up to ``upto`` was taken (nothing beyond it is). A reader that fails to start is
    logged, and this process replays the rest itself (None)."""
    last = from_seq - 1
    handing_over = False
    offering = asyncio.Lock()
    full = asyncio.Event()
    reached = asyncio.Event()  # everything up to ``upto`` is taken

    def beyond(seq: int) -> bool:
        """``seq`` is past ``upto``: not taken, and (stream order) all before it was."""
        if upto is not None and seq > upto:
            reached.set()
            return True
        return False

    def took(seq: int) -> None:
        nonlocal last
        last = seq
        if upto is not None and seq >= upto:
            reached.set()

    async def offer(delivered: Delivered) -> None:
        nonlocal handing_over
        async with offering:
            if handing_over or reached.is_set() or beyond(delivered.seq):
                return  # (handing over: the reader reads it; beyond ``upto``: nobody does)
            if feeder.pending >= feeder.max_pending:
                # not taken: the reader reads from last + 1 (taking this too could fold it twice)
                handing_over = True
                full.set()
                return
            await feeder.offer(delivered)
            took(delivered.seq)

    async def skip_invalid(invalid: InvalidEvent, seq: int, subject: str) -> None:
        async with offering:
            if not handing_over and not reached.is_set() and not beyond(seq):
                feeder.skip_invalid(invalid, seq, subject)
                took(seq)

    replay = await bus.replay(filter_subject, offer, from_seq=from_seq, follow=True, on_invalid=skip_invalid)
    ready = asyncio.create_task(reader.wait_ready())
    waits = [asyncio.create_task(event.wait()) for event in (replay.caught_up, full, reached)]
    try:
        await asyncio.wait({ready, *waits}, return_when=asyncio.FIRST_COMPLETED)
        handing_over = True
        async with offering:  # an offer under way completes first
            await replay.stop()
        if reached.is_set() or (replay.caught_up.is_set() and replay.last_seq <= last):
            ready.cancel()
            return None  # caught up (or up to ``upto``), the last message taken (not one left while handing over)
        try:
            await ready
        except RawReaderError as exc:
            log.warning("ticket log reader process unavailable: replaying in this process", extra={"error": str(exc)})
            await _replay_here(bus, feeder, filter_subject, last + 1, upto)
            return None
        return last
    finally:
        for task in (ready, *waits):
            task.cancel()
        # retrieved, so a reader that failed while we left is no "exception never retrieved"
        await asyncio.gather(ready, *waits, return_exceptions=True)

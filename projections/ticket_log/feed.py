"""Feeding the ticket log from the bus: buffered, batched, off the event loop.

:class:`TicketLogFeeder` is the bus handler: it buffers deliveries and commits
them through :meth:`TicketLogProjection.process_batch` in a worker thread when
``batch_size`` are buffered, every ``flush_interval_s``, and on stop. One commit
runs at a time; deliveries keep arriving meanwhile and form the next batch, so
batches grow under load (up to ``max_batch`` events per transaction).

A commit that fails (store briefly unavailable) puts its events back and is
retried with back-off; after ``max_failures`` consecutive failures the error
propagates (the service exits non-zero and, restarted, resumes from the view's
tracking position). Nothing is ever skipped silently.

:func:`follow` resumes from the view's ``max_tracking_id() + 1`` and keeps going
until ``stop`` is set; :func:`catch_up` folds what is stored and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from events.bus import Bus, Delivered
from events.subjects import ALL_EVENTS
from projections.ticket_log.projection import TicketLogProjection
from projections.ticket_log.view import BatchChanges

log = logging.getLogger(__name__)


class TicketLogFeeder:
    """Buffers deliveries and folds them into ``projection`` in batches."""

    def __init__(self, projection: TicketLogProjection, *, batch_size: int = 1000,
                 max_batch: int = 10_000, flush_interval_s: float = 0.05,
                 max_failures: int = 20) -> None:
        self.projection = projection
        self.batch_size = batch_size
        self.max_batch = max(max_batch, batch_size)
        self.flush_interval_s = flush_interval_s
        self.max_failures = max_failures
        self.committed_seq = 0  #: highest sequence committed by this feeder
        self.events = 0  #: fresh events committed by this feeder
        self.batches = 0  #: transactions committed by this feeder
        self.progress = asyncio.Event()  #: set after every commit (cleared by whoever waits on it)
        self._buffer: list[Delivered] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._failures = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def offer(self, delivered: Delivered) -> None:
        """The bus handler: buffer one delivery (never blocks on the store)."""
        self._buffer.append(delivered)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> int:
        """Commit everything buffered; returns the number of fresh events committed."""
        async with self._lock:
            committed = 0
            while self._buffer:
                batch = self._buffer[:self.max_batch]
                del self._buffer[:len(batch)]
                try:
                    changes = await asyncio.to_thread(self.projection.process_batch, batch)
                except Exception:
                    self._buffer[:0] = batch
                    self._failures += 1
                    if self._failures >= self.max_failures:
                        raise
                    delay = min(0.1 * 2 ** self._failures, 5.0)
                    log.exception("ticket log commit failed failures=%s retry_in=%.1fs", self._failures, delay)
                    await asyncio.sleep(delay)
                    continue
                self._failures = 0
                committed += self._account(batch, changes)
            return committed

    def _account(self, batch: Sequence[Delivered], changes: BatchChanges | None) -> int:
        self.committed_seq = max(self.committed_seq, max(d.seq for d in batch))
        self.progress.set()
        if changes is None:
            return 0
        self.batches += 1
        self.events += changes.events
        log.debug("ticket log batch seqs=%s..%s events=%s tickets=%s skipped=%s",
                  changes.first_seq, changes.tracking.notification_id, changes.events,
                  len(changes.rows), changes.skipped)
        return changes.events

    async def run(self, stop: asyncio.Event) -> None:
        """Flush on size or interval until ``stop`` is set, then flush once more."""
        stopper = asyncio.create_task(_relay(stop, self._wake))
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
                self._wake.clear()
                if self._buffer:
                    await self.flush()
        finally:
            stopper.cancel()
        await self.flush()


async def _relay(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


async def follow(bus: Bus, feeder: TicketLogFeeder, stop: asyncio.Event, *,
                 filter_subject: str = ALL_EVENTS) -> None:
    """Fold the stream into the feeder's view from its tracked position until ``stop``.

    The view should always be fed the same ``filter_subject`` (the projector feeds
    ``lab.>``: the ticket log spans runs): its tracking position means "every
    matching event up to here is folded".
    """
    view = feeder.projection.view
    tracked = await asyncio.to_thread(view.tracked)
    started = time.monotonic()
    replay = await bus.replay(filter_subject, feeder.offer, from_seq=tracked + 1, follow=True)
    log.info("ticket log following subject=%s from_seq=%s", filter_subject, tracked + 1)

    async def report_caught_up() -> None:
        await replay.caught_up.wait()
        log.info("ticket log caught up replayed=%s last_seq=%s in=%.2fs",
                 replay.delivered, replay.last_seq, time.monotonic() - started)

    reporter = asyncio.create_task(report_caught_up())
    try:
        await feeder.run(stop)
    finally:
        reporter.cancel()
        await replay.stop()
    await feeder.flush()  # what arrived between the last flush and the unsubscribe


async def catch_up(bus: Bus, feeder: TicketLogFeeder, *, filter_subject: str = ALL_EVENTS) -> int:
    """Fold every stored matching event after the view's tracked position; returns how many."""
    tracked = await asyncio.to_thread(feeder.projection.view.tracked)
    before = feeder.events
    stop = asyncio.Event()
    runner = asyncio.create_task(feeder.run(stop))
    try:
        await bus.replay(filter_subject, feeder.offer, from_seq=tracked + 1)
    finally:
        stop.set()
        await runner
    return feeder.events - before

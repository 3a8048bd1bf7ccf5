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

What feeds it from the stream (the stored backlog, then live) is :mod:`projections.ticket_log.reading`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential

from events.codec import InvalidEvent
from events.replay import Delivered
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

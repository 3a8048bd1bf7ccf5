"""What every subject's traffic shares: pacing (:class:`Pacer`) and latency percentiles (:func:`latency_percentiles`).

A workload (:mod:`subjects.contract.workload`) and a control burst (:mod:`subjects.bursts`) send
requests at a rate and report how long the answered ones took; both halves live here so that
every subject paces and measures alike. Nothing here knows a subject.

Pacing without drift: each send is scheduled a gap after the previous send's *scheduled* time,
not after the moment it actually went, so a loop that wakes a little late (a busy event loop, a
semaphore held by a slow request) does not lose sends: the rate holds on average.

After a stall, the schedule is capped at one gap before now: whatever a stall missed is skipped,
not sent back to back. A paced sender stands for clients that keep arriving at the rate; clients
who would have arrived while the sender was stuck are gone, and replaying them all at once would
be a burst the traffic never asked for (an unintended load spike on a system that was just slow,
and stats that say the rate was exceeded). The cap still leaves one gap of slack, so the send
that was due goes, plus at most two more at once, whatever the stall's length; then the rate
resumes.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Generic, TypeVar

from events.waiting import pause_unless

K = TypeVar("K")

Clock = Callable[[], float]
"""Seconds on a monotonic scale (default :func:`time.monotonic`)."""

Pause = Callable[[float], Awaitable[object]]
"""Wait that many seconds, or less if the pacer's stop event is set (default: :func:`pause_unless` on it)."""


class Pacer(Generic[K]):
    """Turns to send, at each stream's rate, until ``stop`` is set.

    A stream is a key with a rate (:meth:`add`); :meth:`next` waits for the earliest stream whose
    send is due and returns its key (never ``None``: keys are what the caller sends, ``None`` means
    no turn). See the module for the schedule: without drift, and a stall skips what it missed.

    ``clock`` and ``pause`` are injectable (a test drives time through them); :attr:`now` is that
    clock, for a caller that times its own business (reports, deadlines) on the same scale. ``rng``
    draws the jitter of the streams that have some.
    """

    def __init__(self, stop: asyncio.Event, *, clock: Clock = time.monotonic, pause: Pause | None = None,
                 rng: random.Random | None = None) -> None:
        self.stop = stop
        self.now = clock
        self._pause: Pause = pause if pause is not None else partial(pause_unless, stop)
        self._rng = rng if rng is not None else random.Random()
        self._streams: list[tuple[K, float, float]] = []  # (key, gap, jitter), by the order they were added
        self._due: list[tuple[float, int]] = []  # heap of (next send's time, stream index)

    def add(self, key: K, rate: float, *, jitter: float = 0.0, at: float | None = None) -> None:
        """A stream of ``rate`` sends per second, the first at ``at`` (default: now). With ``jitter``
        (0.2: ±20 %), each gap is the mean gap times a uniform draw in ``[1 - jitter, 1 + jitter]``."""
        if rate <= 0:
            raise ValueError(f"a paced stream needs a positive rate, not {rate}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter is a fraction of the gap in [0, 1), not {jitter}")
        self._streams.append((key, 1.0 / rate, jitter))
        heapq.heappush(self._due, (self.now() if at is None else at, len(self._streams) - 1))

    async def next(self, until: float | None = None) -> K | None:
        """Wait for the next send's turn and return its stream's key; ``None`` once ``stop`` is set or
        the clock has reached ``until`` (the caller's own business: a report due, a deadline), which
        comes first when both are due. The turn is taken: the stream's next send is scheduled."""
        while not self.stop.is_set():
            now = self.now()
            if until is not None and now >= until:
                return None
            if self._due and self._due[0][0] <= now:
                at, index = self._due[0]
                key, gap, jitter = self._streams[index]
                step = gap * self._rng.uniform(1 - jitter, 1 + jitter) if jitter else gap
                heapq.heapreplace(self._due, (max(at + step, now - gap), index))  # the cap: see the module
                return key
            wake = min(self._due[0][0] if self._due else math.inf, math.inf if until is None else until)
            if wake == math.inf:  # no stream and no ``until``: nothing but ``stop`` can end the wait
                await self.stop.wait()
            else:
                await self._pause(wake - now)
        return None


def latency_percentiles(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """``p50_ms`` and ``p99_ms`` of ``latencies_ms`` (to the microsecond; both ``None`` when there are
    none), as :class:`~events.OperationStats` names them. Each is one of the values, no interpolation:
    the order statistic nearest to ``q * (n - 1)`` (ties round half to even)."""
    if not latencies_ms:
        return {"p50_ms": None, "p99_ms": None}
    ordered = sorted(latencies_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 3)

    return {"p50_ms": at(0.5), "p99_ms": at(0.99)}

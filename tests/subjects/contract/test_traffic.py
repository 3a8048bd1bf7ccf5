"""The pacer every subject's traffic shares, driven through an injected clock, and the latency percentiles."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest

from subjects.contract.traffic import Pacer, latency_percentiles


class FakeTime:
    """A clock that only moves when the pacer pauses (by ``lateness`` more than asked: a late wake-up)
    or when the test says so (a stall)."""

    def __init__(self, lateness: float = 0.0) -> None:
        self.now = 0.0
        self.lateness = lateness
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds + self.lateness


def paced(fake: FakeTime, stop: asyncio.Event | None = None, seed: int | None = None) -> Pacer[str]:
    return Pacer(stop if stop is not None else asyncio.Event(), clock=fake, pause=fake.pause,
                 rng=random.Random(seed))


async def turns(pacer: Pacer[str], fake: FakeTime, until: float) -> list[tuple[float, str]]:
    """Every turn until the clock reaches ``until``: (when, key)."""
    taken = []
    while (key := await pacer.next(until=until)) is not None:
        taken.append((fake.now, key))
    return taken


async def test_sends_at_the_rate_on_schedule() -> None:
    fake = FakeTime()
    pacer = paced(fake)
    pacer.add("k", 8.0)  # gaps of 1/8 s: exact in binary, so the schedule is exact too
    taken = await turns(pacer, fake, until=10.0)
    assert [at for at, _ in taken] == [i / 8 for i in range(80)]
    assert all(p > 0 for p in fake.pauses)  # it waited between sends, never spun


async def test_late_wake_ups_do_not_drift_the_rate() -> None:
    """Every pause ends 1/32 s late (under a 1/8 s gap): each send is scheduled from the previous one's
    schedule, not from when it went, so 10 s still hold 80 sends (a sleep-the-gap loop: 64)."""
    fake = FakeTime(lateness=1 / 32)
    pacer = paced(fake)
    pacer.add("k", 8.0)
    taken = await turns(pacer, fake, until=10.0)
    assert [at for at, _ in taken] == [0.0] + [i / 8 + 1 / 32 for i in range(1, 80)]


async def test_a_stall_skips_what_it_missed_instead_of_bursting() -> None:
    fake = FakeTime()
    pacer = paced(fake)
    pacer.add("k", 8.0)
    before = await turns(pacer, fake, until=1.0)
    assert len(before) == 8
    fake.now = 6.0  # stuck for 5 s: 40 sends missed
    after = [at for at, _ in await turns(pacer, fake, until=7.0)]
    at_once = [at for at in after if at == 6.0]
    assert 1 <= len(at_once) <= 3, after  # the due send and at most two more, not the 40 of a backlog
    assert after[len(at_once):] == [6.0 + i / 8 for i in range(1, 8)]  # then the rate again


async def test_streams_keep_their_own_rates_and_staggered_starts() -> None:
    fake = FakeTime()
    pacer = paced(fake)
    pacer.add("fast", 16.0, at=1 / 16)
    pacer.add("slow", 2.0, at=0.5)
    taken = await turns(pacer, fake, until=10.0)
    assert [at for at, key in taken if key == "fast"] == [i / 16 for i in range(1, 160)]
    assert [at for at, key in taken if key == "slow"] == [i / 2 for i in range(1, 20)]
    assert [at for at, _ in taken] == sorted(at for at, _ in taken)


async def test_jitter_spreads_the_gaps_and_keeps_the_mean_rate() -> None:
    fake = FakeTime()
    pacer = paced(fake, seed=7)
    pacer.add("k", 10.0, jitter=0.2)
    taken = await turns(pacer, fake, until=100.0)
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(taken)]
    assert all(0.08 - 1e-9 <= g <= 0.12 + 1e-9 for g in gaps)
    assert len(set(round(g, 6) for g in gaps)) > 100  # spread, not one gap
    assert 950 <= len(taken) <= 1050


async def test_until_comes_first_and_takes_no_turn() -> None:
    fake = FakeTime()
    pacer = paced(fake)
    pacer.add("k", 1.0)
    assert await pacer.next(until=0.0) is None  # due now, but the caller's business first
    assert await pacer.next(until=0.5) == "k"
    assert await pacer.next(until=0.5) is None and fake.now == 0.5  # woke for ``until``, not the send at 1.0
    assert await pacer.next() == "k" and fake.now == 1.0


async def test_a_set_stop_ends_it_without_a_turn() -> None:
    stop = asyncio.Event()
    fake = FakeTime()
    pacer = paced(fake, stop)
    pacer.add("k", 10.0)
    stop.set()
    assert await pacer.next() is None and fake.pauses == []


class ReadClock:
    """The real clock, saying when it was read: a pacer reads it right before it pauses (no await between)."""

    def __init__(self) -> None:
        self.read = asyncio.Event()

    def __call__(self) -> float:
        self.read.set()
        return time.monotonic()


async def test_stop_cuts_a_real_pause_short() -> None:
    """The default pause waits on the stop event: a pacer whose next send is 100 s away ends when stopped."""
    stop, clock = asyncio.Event(), ReadClock()
    pacer: Pacer[str] = Pacer(stop, clock=clock)
    pacer.add("k", 0.01)
    assert await pacer.next() == "k"  # the first is due at once; the next in 100 s
    clock.read.clear()
    waiting = asyncio.create_task(pacer.next())
    await clock.read.wait()  # it read the clock, so it is pausing now
    assert not waiting.done()
    stop.set()
    async with asyncio.timeout(10):  # a deadline for a failure (the pause would last 100 s), not a measurement
        assert await waiting is None


async def test_a_pacer_without_streams_waits_for_stop() -> None:
    stop, clock = asyncio.Event(), ReadClock()
    waiting = asyncio.create_task(Pacer[str](stop, clock=clock).next())
    await clock.read.wait()
    assert not waiting.done()
    stop.set()
    async with asyncio.timeout(10):
        assert await waiting is None


def test_a_stream_needs_a_positive_rate_and_a_jitter_under_one() -> None:
    pacer: Pacer[str] = Pacer(asyncio.Event())
    with pytest.raises(ValueError, match="positive rate"):
        pacer.add("k", 0.0)
    with pytest.raises(ValueError, match="jitter"):
        pacer.add("k", 1.0, jitter=1.0)


def test_latency_percentiles_are_order_statistics() -> None:
    assert latency_percentiles([]) == {"p50_ms": None, "p99_ms": None}
    assert latency_percentiles([4.0]) == {"p50_ms": 4.0, "p99_ms": 4.0}
    # 1..100, shuffled: the values at ranks round(0.5 * 99) = 50 and round(0.99 * 99) = 98 (from 0)
    values = [float(v) for v in range(1, 101)]
    random.Random(1).shuffle(values)
    assert latency_percentiles(values) == {"p50_ms": 51.0, "p99_ms": 99.0}
    # one slow outlier among ten: p99 is it, p50 is not; to the microsecond
    assert latency_percentiles([1.23456] * 9 + [250.0]) == {"p50_ms": 1.235, "p99_ms": 250.0}

"""Shared workload judging: a span of traffic is covered by measured intervals within a little slack,
and the sliding window of the newest intervals is as short as covers it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events import WorkloadStats
from subjects.judging import covers, intervals_held, trailing

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def interval(end: float, length: float) -> WorkloadStats:
    return WorkloadStats(interval_s=length, ended_at=T0 + timedelta(seconds=end))


def test_measured_intervals_a_few_milliseconds_short_still_cover_their_span() -> None:
    assert covers(0.999, 1.0) and covers(0.496, 0.5)
    assert not covers(0.97, 1.0) and not covers(0.75, 1.0)
    quarters = [interval(0.249, 0.249), interval(0.5, 0.251), interval(0.748, 0.248), interval(0.999, 0.251)]
    assert intervals_held([(s, True) for s in quarters], 1.0) == 0.999
    assert intervals_held([(s, True) for s in quarters[:3]], 1.0) is None
    assert intervals_held([(interval(1.0, 1.0), True)], 1.0) is None  # one interval is never a run


def test_the_trailing_window_is_the_fewest_newest_intervals_covering_the_span() -> None:
    stats = [interval(0.25 * i, 0.25) for i in range(1, 9)]
    assert trailing(stats, 1.0) == stats[-4:]
    assert trailing(stats, 0.5) == stats[-2:]
    assert trailing(stats, 0.3) == stats[-2:]
    assert trailing(stats, 0.1) == stats[-1:]
    assert trailing(stats, 2.0) == stats
    assert trailing(stats, 2.5) is None  # the history is shorter than the span
    assert trailing([], 0.1) is None
    # an older run's one-second intervals: one of them is a window of a second
    assert trailing([interval(1.0, 1.0), interval(2.0, 1.0)], 1.0) == [interval(2.0, 1.0)]

"""Shared workload judging: a span of traffic is covered by measured intervals within a little slack,
the sliding window of the newest intervals is as short as covers it, and the error-rate judgement does
what each subject declares of it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from events import NodeStats, ObsSnapshot, OperationStats, WorkloadStats
from subjects.judging import ErrorRateInvariant, covers, intervals_held, trailing

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


def failing(end: float, sent: int, errors: int, length: float = 0.5) -> WorkloadStats:
    """An interval ending at ``end`` in which ``sent`` operations were sent: 4 ``put`` on ``n2``, all fine,
    and the rest ``get`` on ``n1``, ``errors`` of them failed."""
    gets = sent - 4
    return WorkloadStats(interval_s=length, ended_at=T0 + timedelta(seconds=end),
                         operations=[OperationStats(name="get", sent=gets, ok=gets - errors, errors=errors),
                                     OperationStats(name="put", sent=4, ok=4)],
                         nodes=[NodeStats(node="n1", sent=gets, ok=gets - errors, errors=errors),
                                NodeStats(node="n2", sent=4, ok=4)])


def seen(until: float) -> list[ObsSnapshot]:
    """Snapshots every half second up to ``until`` (so the workload up to then is not stale)."""
    return [ObsSnapshot(subject="x", ok=True, observed_at=T0 + timedelta(seconds=0.5 * i))
            for i in range(int(until / 0.5) + 1)]


class RunMinimums(ErrorRateInvariant):
    name = "widget_errors"
    description = "widgets work"
    grace_s = 1.0
    threshold = 0.2
    min_sent = 20
    min_errors = 6
    entity = "widgets"
    counted = "widget calls"
    summary_ratio = True
    operations_key = "calls"
    nodes_key = "hosts"

    def excused(self, history: Sequence[ObsSnapshot]) -> Callable[[WorkloadStats], bool]:
        """Intervals ending at 10 s or later, once any snapshot is blind."""
        blind = any(not s.ok for s in history)
        return lambda s: blind and s.ended_at is not None and s.ended_at >= T0 + timedelta(seconds=10)

    def extra_evidence(self, history: Sequence[ObsSnapshot]) -> dict[str, Any]:
        return {"snapshots_seen": len(history)}


class IntervalMinimum(ErrorRateInvariant):
    name = "gadget_errors"
    description = "gadgets work"
    grace_s = 1.0
    min_sent = 20
    min_sent_per_interval = True
    entity = "gadgets"
    counted = "gadget calls"


def test_the_error_rate_judgement_speaks_in_the_words_and_keys_its_subject_declares() -> None:
    history = seen(12)
    [v] = RunMinimums().evaluate(history, [failing(11.5, 20, 4), failing(12, 20, 6)])
    assert (v.invariant, v.entity) == ("widget_errors", "widgets")
    assert v.summary == "10 of 40 widget calls failed over 1.0s (25%)"
    assert v.evidence == {"sent": 40, "errors": 10, "error_ratio": 0.25, "threshold": 0.2,
                          "calls": {"get": 6}, "hosts": {"n1": 6}, "intervals": 2,
                          "since": (T0 + timedelta(seconds=11)).isoformat(), "failing_for_s": 1.0,
                          "snapshots_seen": 25}
    assert list(v.evidence)[-1] == "snapshots_seen"  # the subject's own evidence comes last
    [w] = IntervalMinimum().evaluate(history, [failing(11.5, 20, 4), failing(12, 20, 6)])
    assert (w.invariant, w.entity) == ("gadget_errors", "gadgets")
    assert w.summary == "10 of 40 gadget calls failed over 1.0s"  # no ratio unless declared
    assert set(w.evidence) == {"sent", "errors", "error_ratio", "threshold", "operations", "nodes", "intervals",
                               "since", "failing_for_s"}
    assert w.evidence["operations"] == {"get": 6} and w.evidence["nodes"] == {"n1": 6}


def test_the_error_rate_judgement_needs_its_threshold_through_the_grace_and_its_minimums() -> None:
    history = seen(12)
    for inv in (RunMinimums(), IntervalMinimum()):
        assert inv.evaluate(history, [failing(12, 100, 90, length=1.0)]) == []  # one interval is never a run
        assert inv.evaluate(history, [failing(11.5, 20, 10)]) == []  # nor half the grace
        below = [failing(11.5, 20, 10), failing(12, 30, 2)]  # the newest interval is under either threshold
        assert inv.evaluate(history, below) == []
        assert inv.evaluate(seen(16), [failing(11.5, 20, 10), failing(12, 20, 10)]) == []  # stale stats
    # a run minimum sums the run; a per-interval one asks it of each interval
    trickles = [failing(11.5, 12, 3), failing(12, 12, 3)]  # 24 sent, 6 failed: 25 % each
    assert [v.entity for v in RunMinimums().evaluate(history, trickles)] == ["widgets"]
    assert IntervalMinimum().evaluate(history, trickles) == []
    few = [failing(11.5, 8, 4), failing(12, 8, 4)]  # 50 % and 8 errors, but 16 sent over the run
    assert RunMinimums().evaluate(history, few) == []
    # the run's errors are counted too, where declared
    assert RunMinimums().evaluate(history, [failing(11.5, 10, 2), failing(12, 10, 3)]) == []  # 5 errors < 6
    [v] = RunMinimums().evaluate(history, [failing(11, 10, 2), failing(11.5, 10, 2), failing(12, 10, 3)])
    assert (v.evidence["sent"], v.evidence["errors"], v.evidence["intervals"]) == (30, 7, 3)


def test_an_interval_with_no_errors_never_counts_even_at_a_zero_threshold() -> None:
    class Any0(IntervalMinimum):
        threshold = 0.0
        min_sent = 0

    history = seen(12)
    assert Any0().evaluate(history, [failing(11.5, 20, 0), failing(12, 20, 0)]) == []
    assert [v.entity for v in Any0().evaluate(history, [failing(11.5, 20, 1), failing(12, 20, 1)])] == ["gadgets"]


def test_intervals_the_subject_excuses_break_the_run() -> None:
    work = [failing(9.5, 20, 10), failing(10, 20, 10), failing(10.5, 20, 10), failing(11, 20, 10)]
    healthy = seen(11)
    blind = [*healthy[:-1], healthy[-1].model_copy(update={"ok": False})]
    assert RunMinimums().evaluate(healthy, work)[0].evidence["intervals"] == 4
    assert RunMinimums().evaluate(blind, work) == []  # the newest three are excused: the run is empty
    # the default excuses nothing, whatever the snapshots say
    assert [v.entity for v in IntervalMinimum().evaluate(blind, work)] == ["gadgets"]

"""The rate limiter's console rows: keys against their limits, over-limit first; Redis with its latency."""

from __future__ import annotations

from events import ObsSnapshot, WorkloadStats
from projections.cluster import ClusterView
from subjects.contract import Picture
from subjects.ratelimiter.console_rows import KeyRow, RateLimiterRows, key_rows
from tests.console.script import Story

RUN = "r20261124t235800-cd34"


def picture(story: Story, blind: str | None = None) -> Picture:
    view = story.folded(ClusterView())
    return Picture(snapshot=view.good_snapshot, workload=view.workload, blind_error=blind, now=story.t(10))


def text(row: list) -> str:  # type: ignore[type-arg]
    return "".join(cell.text for cell in row)


def test_keys_over_limit_first_most_over_first_then_nearest_their_limit() -> None:
    s = Story(RUN)
    s.snapshot(1, counters={
        "calm": (10, 100), "busy": (90, 100), "over-a": (120, 100), "over-b": (80, 40), "mid": (50, 100),
    })
    s.workload(1.5, {"busy": (100, 95, 0), "over-b": (40, 90, 50), "loadgen-only": (30, 20, 0)})
    keys = key_rows(picture(s))
    assert [k.key for k in keys] == ["over-b", "over-a", "busy", "mid", "calm", "loadgen-only"]
    assert [k.over_limit for k in keys] == [True, True, False, False, False, False]
    over_b = keys[0]
    assert (over_b.count, over_b.limit, over_b.sent, over_b.blocked) == (80, 40, 90, 50)
    assert over_b.ratio == 2.0
    only = keys[5]
    assert (only.count, only.limit, only.allowed) == (None, 30, 20)
    rows = RateLimiterRows().workload(picture(s), limit=2)
    assert [text(r).split()[0] for r in rows] == ["over-b", "over-a"]
    assert all("OVER" in text(r) for r in rows)
    assert [c.tone for c in rows[0]] == ["normal", "bad", "normal"]


def test_count_at_the_limit_is_not_over() -> None:
    assert not KeyRow(key="k", limit=100, count=100).over_limit
    assert KeyRow(key="k", limit=100, count=101).over_limit
    assert not KeyRow(key="k", limit=100).over_limit


def test_redis_reads_ok_with_its_latency_or_fail_with_the_reason() -> None:
    s = Story(RUN)
    s.snapshot(1)
    rows = RateLimiterRows().cluster(picture(s))
    assert text(rows[-1]) == "redis    OK   0.6 ms"
    s.snapshot(2, redis_ok=False)
    failing = RateLimiterRows().cluster(picture(s))[-1]
    assert text(failing).startswith("redis    FAIL") and "OOM command not allowed" in text(failing)
    assert failing[1].tone == "bad"


def test_a_blind_observer_shows_every_row_as_unknown() -> None:
    s = Story(RUN)
    s.snapshot(1, down=("rl-2",))
    rows = RateLimiterRows().cluster(picture(s, blind="connection refused"))
    assert {r[1].text.strip() for r in rows} == {"?"}
    assert "stale: observer blind" in text(rows[-1])


def test_stats_without_details_show_keys_with_unknown_limits() -> None:
    stats = WorkloadStats(interval_s=1.0, operations=[])
    empty = Picture(snapshot=ObsSnapshot(subject="ratelimiter", ok=True), workload=stats, blind_error=None,
                    now=Story(RUN).t(0))
    assert key_rows(empty) == []
    assert text(RateLimiterRows().workload(empty)[0]) == "no workload stats yet"

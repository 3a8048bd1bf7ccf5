"""The workload against real nodes: plausible stats, client-side correctness, failover."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from events import WorkloadStats
from subjects.contract import NoArgs
from subjects.ratelimiter.details import snapshot_details, workload_details
from subjects.ratelimiter.invariants import OverLimit
from subjects.ratelimiter.workload import RateLimiterWorkload
from tests.subjects.ratelimiter.conftest import Cluster, Watcher, eventually, running


def having(stats: list[WorkloadStats], pred: Callable[[list[WorkloadStats]], bool]
           ) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return pred(stats)

    return check


async def test_workload_stats_are_plausible(cluster: Cluster, watcher: Watcher) -> None:
    settings = cluster.settings
    workload = RateLimiterWorkload(settings)
    rates = workload.rates()
    over = [k for k, f in workload.factors.items() if f > 1]
    assert over == ["api:checkout"] and all(0.6 <= f <= 0.95 for k, f in workload.factors.items() if k not in over)
    assert math.isclose(rates["api:checkout"], 4.0 * 15)  # the probe of enforcement: see the module doc

    async with running(workload, interval_s=1.0) as stats:
        async def blocked_and_observed() -> bool:
            await watcher.observe()
            return len(stats) >= 3 and sum(o.rejected for s in stats for o in s.operations if o.name in over) > 0

        await eventually(blocked_and_observed, timeout=15.0, interval=0.1, what="three intervals, some blocked")
    assert OverLimit().evaluate(watcher.history, stats) == []
    assert watcher.violations() == []
    assert all(c.count <= c.limit for snap in watcher.history for c in snapshot_details(snap).counters)

    full = [s for s in stats if s.interval_s >= 0.5]
    for s in full:
        # one operation per key; the limit each key's checks reported is in the details
        limits = workload_details(s).limits
        assert set(limits) == {o.name for o in s.operations}
        for o in s.operations:
            assert limits[o.name] == settings.policy[o.name]
            assert o.sent == o.ok + o.rejected + o.errors and o.errors == 0
            # a 1 s interval is one window, give or take the client/server timing at its edges
            assert o.ok <= math.ceil(limits[o.name] * (s.interval_s + 0.1) / settings.window_s), (s.interval_s, o)
        total = sum(o.sent for o in s.operations)
        assert total > 0.5 * sum(rates.values()) * s.interval_s, (total, s)
        for n in s.nodes:
            assert n.sent > 0 and n.errors == 0, n
            assert n.p50_ms is not None and n.p99_ms is not None and 0 < n.p50_ms <= n.p99_ms, n
        assert sum(n.ok for n in s.nodes) == sum(o.ok for o in s.operations)
        assert s.ended_at is not None
        # per node and key: attempts add up to the node's, and decisions to the key's
        for n in s.nodes:
            assert [sum(getattr(no, f) for no in n.operations) for f in ("sent", "ok", "rejected", "errors")] == [
                n.sent, n.ok, n.rejected, n.errors]
        for o in s.operations:
            per_node = [no for n in s.nodes for no in n.operations if no.name == o.name]
            assert sum(no.ok for no in per_node) == o.ok
            assert sum(no.rejected for no in per_node) == o.rejected
        # the over-rate key is blocked on every node alike: the black-box probe of enforcement
        checkout = [no for n in s.nodes for no in n.operations if no.name == "api:checkout"]
        assert len(checkout) == 3 and all(no.rejected > 0 for no in checkout if no.sent >= 5), checkout
    assert sum(o.rejected for s in stats for o in s.operations if o.name not in over) <= 0.02 * sum(
        o.sent for s in stats for o in s.operations if o.name not in over)


async def test_requests_fail_over_from_a_dead_node(cluster: Cluster) -> None:
    workload = RateLimiterWorkload(cluster.settings, factors={"user:alice": 0.8, "api:search": 0.5})
    kill = cluster.kit.fault("node_kill")
    assert kill is not None
    async with running(workload, interval_s=0.5) as stats:
        await eventually(having(stats, lambda s: len(s) >= 1), timeout=5.0, what="first interval")
        injection = await kill.inject("node-2", NoArgs())
        try:
            def failed_over(s: list[WorkloadStats]) -> bool:
                return any(n.node == "node-2" and n.errors > 0 for x in s for n in x.nodes)

            await eventually(having(stats, failed_over), timeout=5.0, what="errors on node-2")
            count = len(stats)
            await eventually(having(stats, lambda s: len(s) > count), timeout=5.0, what="a full interval")
        finally:
            await kill.revert(injection.undo)
    last = stats[count]
    node2 = next(n for n in last.nodes if n.node == "node-2")
    assert node2.errors > 0 and node2.ok == 0
    assert all(o.errors == 0 and o.ok > 0 for o in last.operations)
    assert all(n.sent > 0 and n.errors == 0 for n in last.nodes if n.node != "node-2")


async def test_stats_come_every_quarter_second_unless_told_otherwise(cluster: Cluster) -> None:
    workload = RateLimiterWorkload(cluster.settings, factors={"api:checkout": 4.0})
    assert cluster.settings.stats_interval_s == 0.25
    async with running(workload, interval_s=None) as stats:
        await eventually(having(stats, lambda s: len(s) >= 5), timeout=10.0, what="five intervals")
    full = stats[1:5]  # the first one starts with the traffic's stagger
    assert all(0.2 <= s.interval_s <= 0.4 for s in full), [s.interval_s for s in full]
    # 60 checks/s of the key: each quarter second holds ~15 of them
    assert all(10 <= sum(o.sent for o in s.operations) <= 25 for s in full), [s.operations for s in full]
    slower = cluster.settings.model_copy(update={"stats_interval_s": 0.5})
    async with running(RateLimiterWorkload(slower, factors={"api:checkout": 1.0}), interval_s=None) as stats:
        await eventually(having(stats, lambda s: len(s) >= 3), timeout=10.0, what="three intervals")
    assert all(0.45 <= s.interval_s <= 0.65 for s in stats[1:3]), [s.interval_s for s in stats]

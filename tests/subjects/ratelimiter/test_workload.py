"""The workload against real nodes: plausible stats, client-side correctness, failover."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from events import WorkloadStats
from subjects.base import NoArgs
from subjects.ratelimiter import RateLimiterWorkload
from subjects.ratelimiter.invariants import OverLimit
from tests.subjects.ratelimiter.conftest import Cluster, Watcher, eventually


@asynccontextmanager
async def running(workload: RateLimiterWorkload, interval_s: float) -> AsyncIterator[list[WorkloadStats]]:
    stats: list[WorkloadStats] = []

    async def sink(s: WorkloadStats) -> None:
        stats.append(s)

    stop = asyncio.Event()
    task = asyncio.create_task(workload.run(stop, sink, interval_s))
    try:
        yield stats
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def having(stats: list[WorkloadStats], pred: Callable[[list[WorkloadStats]], bool]
           ) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return pred(stats)

    return check


async def test_workload_stats_are_plausible(cluster: Cluster, watcher: Watcher) -> None:
    settings = cluster.settings
    workload = cluster.adapter.workload()
    assert isinstance(workload, RateLimiterWorkload)
    rates = workload.rates()
    over = [k for k, f in workload.factors.items() if f > 1]
    assert over == ["api:checkout"] and all(0.6 <= f <= 0.95 for k, f in workload.factors.items() if k not in over)
    assert math.isclose(rates["api:checkout"], 2.5 * 15)

    async with running(workload, interval_s=1.0) as stats:
        async def blocked_and_observed() -> bool:
            await watcher.observe()
            return len(stats) >= 3 and sum(k.blocked for s in stats for k in s.keys if k.key in over) > 0

        await eventually(blocked_and_observed, timeout=15.0, interval=0.1, what="three intervals, some blocked")
    assert OverLimit().evaluate(watcher.history, stats) == []
    assert watcher.violations() == []
    assert all(c.count <= c.limit for snap in watcher.history for c in snap.counters)

    full = [s for s in stats if s.interval_s >= 0.5]
    for s in full:
        for k in s.keys:
            assert k.limit == settings.policy[k.key]
            assert k.sent == k.allowed + k.blocked + k.errors and k.errors == 0
            # a 1 s interval is one window, give or take the client/server timing at its edges
            assert k.allowed <= math.ceil(k.limit * (s.interval_s + 0.1) / settings.window_s), (s.interval_s, k)
        total = sum(k.sent for k in s.keys)
        assert total > 0.5 * sum(rates.values()) * s.interval_s, (total, s)
        for n in s.nodes:
            assert n.sent > 0 and n.errors == 0 and 0 < n.p50_ms <= n.p99_ms
        assert sum(n.allowed for n in s.nodes) == sum(k.allowed for k in s.keys)
        assert s.ended_at is not None
        # per node and key: attempts add up to the node's, and decisions to the key's
        for n in s.nodes:
            assert [sum(getattr(k, f) for k in n.keys) for f in ("sent", "allowed", "blocked", "errors")] == [
                n.sent, n.allowed, n.blocked, n.errors]
        for k in s.keys:
            per_node = [nk for n in s.nodes for nk in n.keys if nk.key == k.key]
            assert sum(nk.allowed for nk in per_node) == k.allowed
            assert sum(nk.blocked for nk in per_node) == k.blocked
        # the over-rate key is blocked on every node alike: the black-box probe of enforcement
        checkout = [nk for n in s.nodes for nk in n.keys if nk.key == "api:checkout"]
        assert len(checkout) == 3 and all(nk.blocked > 0 for nk in checkout if nk.sent >= 5), checkout
    assert sum(k.blocked for s in stats for k in s.keys if k.key not in over) <= 0.02 * sum(
        k.sent for s in stats for k in s.keys if k.key not in over)


async def test_requests_fail_over_from_a_dead_node(cluster: Cluster) -> None:
    workload = RateLimiterWorkload(cluster.settings, factors={"user:alice": 0.8, "api:search": 0.5})
    kill = cluster.adapter.fault("node_kill")
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
    assert node2.errors > 0 and node2.allowed == 0
    assert all(k.errors == 0 and k.allowed > 0 for k in last.keys)
    assert all(n.sent > 0 and n.errors == 0 for n in last.nodes if n.node != "node-2")

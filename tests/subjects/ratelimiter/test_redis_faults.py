"""The Redis-level faults end to end, on a valkey and a cluster of their own.

``redis_pause`` and ``redis_oom`` change the server itself (a pause, its memory
limit), so they never touch the session's shared valkey; every test restores
the server in ``finally`` and an autouse fixture restores it again after each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from subjects.contract import RefusedError, ToolCall
from subjects.contract.fault_kit import Reverted
from subjects.ratelimiter.details import snapshot_details
from subjects.ratelimiter.faults import OomParams, PauseParams
from subjects.ratelimiter.invariants import ErrorRate, RedisUnavailable
from subjects.ratelimiter.workload import RateLimiterWorkload
from tests.servers import start_valkey
from tests.subjects.ratelimiter.conftest import Cluster, Watcher, eventually, run_playbook, running_cluster


@pytest.fixture(scope="module")
async def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    server = start_valkey(tmp_path_factory.mktemp("valkey-faults"))
    try:
        async with running_cluster(tmp_path_factory.mktemp("redis-cluster"), server.url) as c:
            yield c
    finally:
        server.stop()


@pytest.fixture(autouse=True)
async def restored(redis_cluster: Cluster) -> AsyncIterator[None]:
    yield
    backend = redis_cluster.lab.backend
    await backend.unpause()
    await backend.set_memory_config(0, "noeviction")


def workload(cluster: Cluster) -> RateLimiterWorkload:
    """~62 requests/s, with enough concurrency to keep ~30 per 0.5 s interval even when each
    request takes 1.5 s to fail on every node."""
    return RateLimiterWorkload(cluster.settings, factors={"user:alice": 0.8, "api:search": 0.5}, concurrency=96)


async def test_redis_pause_fires_redis_unavailable_alone_and_unpause_clears_it(redis_cluster: Cluster) -> None:
    watcher = Watcher(redis_cluster.observer)
    fault = redis_cluster.kit.fault("redis_pause")
    assert fault is not None
    params = PauseParams(pause_s=30)
    async with watcher.traffic(workload(redis_cluster), interval_s=0.5) as stats:
        await watcher.intervals(stats, 1)
        injection = await fault.inject(None, params)
        assert injection.target == "redis" and injection.undo == {"pause_ms": 30_000}
        try:
            evidence = await fault.effective(injection, params)
            assert evidence is not None and evidence["write"]["kind"] == "timeout"
            assert evidence["paused_actions"] == "write"

            violation = await watcher.until_violated(RedisUnavailable(), "redis")
            # valkey says in its INFO that it holds writes: the observer reads that at once instead of
            # waiting out its write probe's timeout
            assert violation.evidence["write_probe"] == "paused" and violation.evidence["reads"] == "ok"
            assert violation.evidence["paused_actions"] == "write"
            snap = watcher.history[-1]
            backend = snapshot_details(snap).backend
            assert snap.ok and backend is not None and backend.ok is False
            # read from INFO, not from a probe that timed out (a duration would time the machine, not the code)
            assert backend.writable is False and "CLIENT PAUSE write" in (backend.write_error or "")

            # let the pause show everywhere: heartbeats (writes) go stale, every check fails
            async def heartbeats_stale() -> bool:
                snap = await watcher.observe()
                processes = snapshot_details(snap).nodes
                return any(n.status == "down" and n.node in processes and processes[n.node].health_ok
                           for n in snap.nodes)

            await eventually(heartbeats_stale, timeout=5.0, what="stale heartbeats")

            async def two_failing_intervals() -> bool:
                await watcher.observe()
                bad = [s for s in stats if sum(o.sent for o in s.operations) >= ErrorRate.min_sent
                       and sum(o.errors for o in s.operations) == sum(o.sent for o in s.operations)]
                return len(bad) >= 2

            await eventually(two_failing_intervals, timeout=8.0, what="two failing intervals")
            # one fault, one violation: node_down and error_rate are inhibited by redis_unavailable
            assert set(watcher.seen) == {("redis_unavailable", "redis")}

            hypothesis, remedy, results = await run_playbook(redis_cluster.toolbox, violation)
            assert "paused for write" in hypothesis and "lifting the pause" in hypothesis, hypothesis
            assert remedy == [ToolCall("unpause_redis")]
            assert results[0]["paused_before"] == "write" and results[0]["writable"] is True

            await watcher.until_cleared(RedisUnavailable(), "redis")

            async def recovered() -> bool:
                snap = await watcher.observe()
                return (all(n.status == "up" for n in snap.nodes) and len(stats) >= 2
                        and all(o.errors == 0 and o.sent > 0 for o in stats[-1].operations))

            await eventually(recovered, timeout=8.0, what="nodes up and checks succeeding")
            await watcher.intervals(stats, 1)
            assert set(watcher.seen) == {("redis_unavailable", "redis")}
            assert watcher.violations() == []
        finally:
            first = await fault.revert(injection.undo)
    # the agent's unpause_redis had lifted it: the revert found nothing to undo
    assert first == await fault.revert(injection.undo) == Reverted(
        "Redis was not paused (already unpaused, or its pause ran out)", changed=False)


async def test_redis_oom_fires_error_rate_and_set_memory_limit_clears_it(redis_cluster: Cluster) -> None:
    lab = redis_cluster.lab
    watcher = Watcher(redis_cluster.observer)
    fault = redis_cluster.kit.fault("redis_oom")
    assert fault is not None
    params = OomParams()
    before = await lab.backend.memory_config()
    assert before == {"maxmemory": 0, "maxmemory_policy": "noeviction"}
    async with watcher.traffic(workload(redis_cluster), interval_s=0.5) as stats:
        await watcher.intervals(stats, 1)
        injection = await fault.inject("redis", params)
        assert injection.target == "redis" and injection.undo["maxmemory"] == 0
        assert injection.undo["maxmemory_policy"] == "noeviction" and injection.undo["set_to"] > 0
        try:
            evidence = await fault.effective(injection, params)
            assert evidence is not None and evidence["write"]["kind"] == "oom"
            assert evidence["used_memory"] > evidence["maxmemory"] == injection.undo["set_to"]

            violation = await watcher.until_violated(ErrorRate(), "checks")
            assert violation.evidence["error_ratio"] >= ErrorRate.threshold
            assert violation.evidence["redis_write_probe"] == "oom"
            assert "OOM" in (violation.evidence["redis_write_error"] or "")
            # reads and heartbeats go on (the heartbeat script is allow-oom): nothing else fires
            assert set(watcher.seen) == {("error_rate", "checks")}
            assert all(n.status == "up" for n in watcher.history[-1].nodes)

            hypothesis, remedy, results = await run_playbook(redis_cluster.toolbox, violation)
            assert "out of memory" in hypothesis and "declared memory limit" in hypothesis, hypothesis
            assert remedy == [ToolCall("set_memory_limit")]
            assert results[0]["previous"]["maxmemory"] == injection.undo["set_to"]
            assert results[0]["now"] == before and results[0]["writable"] is True

            await watcher.until_cleared(ErrorRate(), "checks")
            assert await fault.effective(injection, params) is None
            assert set(watcher.seen) == {("error_rate", "checks")}
        finally:
            first = await fault.revert(injection.undo)
    # the agent's set_memory_limit had restored it: the revert found nothing to undo
    assert first == await fault.revert(injection.undo) == Reverted(
        "restored maxmemory=0 maxmemory-policy=noeviction (already so)", changed=False)
    assert await lab.backend.memory_config() == before


async def test_a_second_pause_is_refused(redis_cluster: Cluster) -> None:
    fault = redis_cluster.kit.fault("redis_pause")
    assert fault is not None
    injection = await fault.inject("redis", PauseParams(pause_s=10))
    try:
        with pytest.raises(RefusedError, match="already paused"):
            await fault.inject("redis", PauseParams(pause_s=10))
    finally:
        await fault.revert(injection.undo)
    assert (await redis_cluster.lab.backend.write_probe()).ok


async def test_an_undo_derived_from_the_target_alone_repairs_redis_faults(redis_cluster: Cluster) -> None:
    """What a chaos service that died mid-injection (undo never recorded) can still repair."""
    backend = redis_cluster.lab.backend
    pause, oom = redis_cluster.kit.fault("redis_pause"), redis_cluster.kit.fault("redis_oom")
    assert pause is not None and oom is not None
    await pause.inject("redis", PauseParams(pause_s=10))
    assert (await backend.write_probe()).kind == "timeout"
    reverted = await pause.revert(pause.undo_for_target("redis", PauseParams()) or {"missing": True})
    assert reverted.changed and reverted.detail.startswith("CLIENT UNPAUSE sent (paused for write)")
    assert (await backend.write_probe()).ok

    await oom.inject("redis", OomParams())
    assert (await backend.write_probe()).kind == "oom"
    undo = oom.undo_for_target("redis", OomParams())
    assert undo == {"maxmemory": 0, "maxmemory_policy": "noeviction"}  # the declared configuration
    assert await oom.revert(undo) == Reverted("restored maxmemory=0 maxmemory-policy=noeviction")
    assert (await backend.write_probe()).ok

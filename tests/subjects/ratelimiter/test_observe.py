"""observe() against real nodes and a real Redis: up, down (not vanished), blind (never raises)."""

from __future__ import annotations

from pathlib import Path

from events import ObsSnapshot
from oplab.infra import free_port, start_valkey
from subjects.base import Injection, NoArgs, Violation
from subjects.ratelimiter import RateLimiterAdapter
from subjects.ratelimiter.invariants import ObserverBlind, RedisUnavailable
from tests.subjects.ratelimiter.conftest import Cluster, eventually, node_settings, run_playbook


async def test_a_healthy_cluster_reads_up(cluster: Cluster) -> None:
    snap = await cluster.adapter.observe()
    assert snap.ok, snap.error
    assert snap.subject == "ratelimiter"
    assert [n.node for n in snap.nodes] == ["node-1", "node-2", "node-3"]
    assert all(n.status == "up" and n.last_seen is not None and n.pid for n in snap.nodes), snap.nodes
    assert snap.backend is not None and snap.backend.ok and snap.backend.latency_ms is not None
    assert snap.backend.writable is True and snap.backend.write_error is None
    assert snap.backend.info["write_probe"] == "ok" and snap.backend.info["reads"] == "ok"
    assert "uptime_in_seconds" in snap.backend.info and snap.backend.info["maxmemory_policy"] == "noeviction"
    assert all(n.health_ok is True and n.heartbeat_age_s is not None and n.heartbeat_age_s <= 1.0
               for n in snap.nodes)
    assert {c.key for c in snap.counters} == set(cluster.settings.policy)
    assert all(c.limit == cluster.settings.policy[c.key] == c.declared_limit and c.future_entries == 0
               for c in snap.counters)
    assert all(c.window_s == cluster.settings.window_s for c in snap.counters)
    assert snap.duration_ms > 0


async def test_a_killed_node_reads_down_and_does_not_vanish(cluster: Cluster) -> None:
    adapter = cluster.adapter
    fault = adapter.fault("node_kill")
    assert fault is not None
    injection = await fault.inject("node-2", NoArgs())
    try:
        assert injection == Injection("node-2", {"node": "node-2", "pid": injection.undo["pid"]})

        async def reaped() -> bool:  # supervisord notices the death on its next tick
            return await adapter.control.state("node-2") not in ("RUNNING", "STARTING")

        await eventually(reaped, timeout=5.0, what="supervisord to see node-2 dead")

        async def node2(snap_detail: str) -> ObsSnapshot | None:
            snap = await adapter.observe()
            view = next(n for n in snap.nodes if n.node == "node-2")
            return snap if snap.ok and view.status == "down" and snap_detail in view.detail else None

        snap = await eventually(lambda: node2("/health"), timeout=5.0, what="node-2 down")
        assert [n.node for n in snap.nodes] == ["node-1", "node-2", "node-3"]
        down = snap.nodes[1]
        assert down.last_seen is not None and down.pid == injection.undo["pid"]
        assert [n.status for n in snap.nodes] == ["up", "down", "up"]
        # the heartbeat goes stale too (judged by Redis time), independently of the probe
        await eventually(lambda: node2("no heartbeat for"), timeout=5.0, what="node-2 heartbeat stale")
    finally:
        await fault.revert(injection.undo)
    snap = await adapter.observe()
    assert [n.status for n in snap.nodes] == ["up", "up", "up"], snap.nodes


async def test_observe_is_blind_not_raising_when_redis_stops(tmp_path: Path) -> None:
    server = start_valkey(tmp_path / "valkey")
    settings = node_settings(server.url, {"node-1": f"http://127.0.0.1:{free_port()}"})
    adapter = RateLimiterAdapter(settings)
    try:
        snap = await adapter.observe()
        assert snap.ok, snap.error
        assert [(n.node, n.status) for n in snap.nodes] == [("node-1", "down")]
        assert "no heartbeat seen" in snap.nodes[0].detail
        server.stop()
        snap = await adapter.observe()
        assert not snap.ok
        assert snap.error is not None and "redis" in snap.error
        assert snap.backend is not None and not snap.backend.ok and snap.backend.info["reads"] == "failed"
        assert snap.counters == []
    finally:
        server.stop()
        await adapter.close()


async def test_observer_blind_fires_from_failing_snapshots() -> None:
    settings = node_settings(f"redis://127.0.0.1:{free_port()}/0", {"node-1": f"http://127.0.0.1:{free_port()}"})
    adapter = RateLimiterAdapter(settings)
    blind = ObserverBlind()
    try:
        first = await adapter.observe()
        assert not first.ok and first.error
        assert blind.evaluate([first], []) == []
        second = await adapter.observe()
        [violation] = blind.evaluate([first, second], [])
        assert violation.invariant == "observer_blind" and violation.entity == "observer"
        assert violation.evidence["failures"] == 2 and "redis" in violation.evidence["error"]
        assert blind.evaluate([first, second, _healthy(second)], []) == []
        playbook = next(p for p in adapter.playbooks() if p.invariant == "observer_blind")
        assert [c.tool for c in playbook.diagnose(violation.evidence)] == ["list_nodes"]
        # list_nodes still answers (from probes) while Redis is unreachable
        listing = await adapter.tool("list_nodes").call({})  # type: ignore[union-attr]
        assert [n["status"] for n in listing["nodes"]] == ["down"]
        assert playbook.remedy(violation.evidence, {"list_nodes": listing}) == []
        assert "cannot read" in playbook.hypothesis(violation.evidence, {"list_nodes": listing})

        # the reads failing is redis_unavailable too, and with no Redis to talk to, its playbook escalates
        history = [first, second]

        async def unavailable_fired() -> list[Violation]:
            history.append(await adapter.observe())
            return RedisUnavailable().evaluate(history, [])

        [unavailable] = await eventually(unavailable_fired, timeout=5.0, interval=0.1, what="redis_unavailable")
        assert unavailable.entity == "redis" and unavailable.evidence["reads"] == "failed"
        hypothesis, remedy, _ = await run_playbook(adapter, unavailable)
        assert remedy == [] and "cannot be reached" in hypothesis and "escalate" in hypothesis, hypothesis
        info = await adapter.tool("redis_info").call({})  # type: ignore[union-attr]
        assert info["reachable"] is False and info["write"]["kind"] == "unreachable"
    finally:
        await adapter.close()


def _healthy(snap: ObsSnapshot) -> ObsSnapshot:
    return snap.model_copy(update={"ok": True, "error": None, "observed_at": snap.observed_at})

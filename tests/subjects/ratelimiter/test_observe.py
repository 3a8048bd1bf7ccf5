"""observe() against real nodes and a real Redis: up, down (not vanished), blind (never raises)."""

from __future__ import annotations

from pathlib import Path

from events import ObsSnapshot
from oplab.infra import free_port
from subjects.contract import NoArgs, Violation
from subjects.contract.fault_kit import Injection
from subjects.judging import ObserverBlind
from subjects.ratelimiter.cluster import RateLimiterCluster
from subjects.ratelimiter.details import snapshot_details
from subjects.ratelimiter.invariants import RedisUnavailable
from subjects.ratelimiter.observer import RateLimiterObserver
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from tests.servers import start_valkey
from tests.subjects.ratelimiter.conftest import Cluster, eventually, node_settings, run_playbook


async def test_a_healthy_cluster_reads_up(cluster: Cluster) -> None:
    snap = await cluster.observer.observe()
    assert snap.ok, snap.error
    assert snap.subject == "ratelimiter"
    assert [n.node for n in snap.nodes] == ["node-1", "node-2", "node-3"]
    details = snapshot_details(snap)
    assert set(details.nodes) == {n.node for n in snap.nodes}
    assert all(n.status == "up" and n.last_seen is not None and details.nodes[n.node].pid for n in snap.nodes), \
        (snap.nodes, details.nodes)
    backend = details.backend
    assert backend is not None and backend.ok and backend.latency_ms is not None
    assert backend.writable is True and backend.write_error is None
    assert backend.info["write_probe"] == "ok" and backend.info["reads"] == "ok"
    assert "uptime_in_seconds" in backend.info and backend.info["maxmemory_policy"] == "noeviction"
    redis = snap.component("redis")
    assert redis is not None and redis.status == "up", snap.components
    assert all(p.health_ok is True and p.heartbeat_age_s is not None and p.heartbeat_age_s <= 1.0
               for p in details.nodes.values())
    assert {c.key for c in details.counters} == set(cluster.settings.policy)
    assert all(c.limit == cluster.settings.policy[c.key] == c.declared_limit and c.future_entries == 0
               for c in details.counters)
    assert all(c.window_s == cluster.settings.window_s for c in details.counters)
    assert snap.duration_ms > 0


async def test_a_killed_node_reads_down_and_does_not_vanish(cluster: Cluster) -> None:
    lab, observer = cluster.lab, cluster.observer
    fault = cluster.kit.fault("node_kill")
    assert fault is not None
    injection = await fault.inject("node-2", NoArgs())
    try:
        assert injection == Injection("node-2", {"node": "node-2", "pid": injection.undo["pid"]})

        async def reaped() -> bool:  # supervisord notices the death on its next tick
            return await lab.control.state("node-2") not in ("RUNNING", "STARTING")

        await eventually(reaped, timeout=5.0, what="supervisord to see node-2 dead")

        async def node2(snap_detail: str) -> ObsSnapshot | None:
            snap = await observer.observe()
            view = next(n for n in snap.nodes if n.node == "node-2")
            return snap if snap.ok and view.status == "down" and snap_detail in view.detail else None

        snap = await eventually(lambda: node2("/health"), timeout=5.0, what="node-2 down")
        assert [n.node for n in snap.nodes] == ["node-1", "node-2", "node-3"]
        down = snap.nodes[1]
        assert down.last_seen is not None and snapshot_details(snap).nodes["node-2"].pid == injection.undo["pid"]
        assert [n.status for n in snap.nodes] == ["up", "down", "up"]
        # the heartbeat goes stale too (judged by Redis time), independently of the probe
        await eventually(lambda: node2("no heartbeat for"), timeout=5.0, what="node-2 heartbeat stale")
    finally:
        await fault.revert(injection.undo)
    snap = await observer.observe()
    assert [n.status for n in snap.nodes] == ["up", "up", "up"], snap.nodes


async def test_observe_is_blind_not_raising_when_redis_stops(tmp_path: Path) -> None:
    server = start_valkey(tmp_path / "valkey")
    settings = node_settings(server.url, {"node-1": f"http://127.0.0.1:{free_port()}"})
    observer = RateLimiterObserver(settings)
    try:
        snap = await observer.observe()
        assert snap.ok, snap.error
        assert [(n.node, n.status) for n in snap.nodes] == [("node-1", "down")]
        assert "no heartbeat seen" in snap.nodes[0].detail
        server.stop()
        snap = await observer.observe()
        assert not snap.ok
        assert snap.error is not None and "redis" in snap.error
        backend = snapshot_details(snap).backend
        assert backend is not None and not backend.ok and backend.info["reads"] == "failed"
        assert snapshot_details(snap).counters == []
    finally:
        server.stop()
        await observer.close()


async def test_observer_blind_fires_from_failing_snapshots() -> None:
    settings = node_settings(f"redis://127.0.0.1:{free_port()}/0", {"node-1": f"http://127.0.0.1:{free_port()}"})
    lab = RateLimiterCluster(settings)
    observer, toolbox = RateLimiterObserver(cluster=lab), RateLimiterToolbox(cluster=lab)
    blind = ObserverBlind()
    try:
        first = await observer.observe()
        assert not first.ok and first.error
        assert blind.evaluate([first], []) == []
        second = await observer.observe()
        [violation] = blind.evaluate([first, second], [])
        assert violation.invariant == "observer_blind" and violation.entity == "observer"
        assert violation.evidence["failures"] == 2 and "redis" in violation.evidence["error"]
        assert blind.evaluate([first, second, _healthy(second)], []) == []
        playbook = next(p for p in toolbox.playbooks() if p.invariant == "observer_blind")
        assert [c.tool for c in playbook.diagnose(violation.evidence)] == ["list_nodes"]
        # list_nodes still answers (from probes) while Redis is unreachable
        listing = await toolbox.tool("list_nodes").call({})  # type: ignore[union-attr]
        assert [n["status"] for n in listing["nodes"]] == ["down"]
        assert playbook.remedy(violation.evidence, {"list_nodes": listing}) == []
        assert "cannot read" in playbook.hypothesis(violation.evidence, {"list_nodes": listing})

        # the reads failing is redis_unavailable too, and with no Redis to talk to, its playbook escalates
        history = [first, second]

        async def unavailable_fired() -> list[Violation]:
            history.append(await observer.observe())
            return RedisUnavailable().evaluate(history, [])

        [unavailable] = await eventually(unavailable_fired, timeout=5.0, interval=0.1, what="redis_unavailable")
        assert unavailable.entity == "redis" and unavailable.evidence["reads"] == "failed"
        hypothesis, remedy, _ = await run_playbook(toolbox, unavailable)
        assert remedy == [] and "cannot be reached" in hypothesis and "escalate" in hypothesis, hypothesis
        info = await toolbox.tool("redis_info").call({})  # type: ignore[union-attr]
        assert info["reachable"] is False and info["write"]["kind"] == "unreachable"
    finally:
        await toolbox.close()
        await observer.close()


def _healthy(snap: ObsSnapshot) -> ObsSnapshot:
    return snap.model_copy(update={"ok": True, "error": None, "observed_at": snap.observed_at})

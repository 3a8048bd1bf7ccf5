"""Each invariant fires on a real injected fault, from real observe() snapshots, and clears after
the playbook's remedy run through the real tools. Refusals change nothing; reverts are idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from subjects.contract import NoArgs, RefusedError, Tool, Toolbox, ToolCall
from subjects.contract.fault_kit import Fault, Reverted
from subjects.ratelimiter.details import snapshot_details
from subjects.ratelimiter.faults import BurstParams, DriftParams, MisconfigParams, OomParams, PauseParams
from subjects.ratelimiter.invariants import FutureDatedEntries, NodeDown, OverLimit
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from tests.subjects.ratelimiter.conftest import Cluster, Watcher, eventually, run_playbook


async def test_node_kill_fires_node_down_and_restart_node_clears_it(cluster: Cluster, watcher: Watcher) -> None:
    fault = cluster.kit.fault("node_kill")
    assert fault is not None and fault.default_ttl_s == 60
    injection = await fault.inject(None, NoArgs())
    node = injection.target
    assert node == "node-1" and injection.undo["node"] == node
    try:
        evidence = await eventually(lambda: fault.effective(injection, NoArgs()), timeout=5.0, what="effective")
        assert evidence["node"] == node and "refused" in evidence["health"]

        violation = await watcher.until_violated(NodeDown(), node)
        assert violation.evidence["node"] == node and violation.evidence["snapshots"] >= 2
        assert violation.evidence["down_for_s"] >= NodeDown.grace_s
        others = {v.entity for v in NodeDown().evaluate(watcher.history, [])}
        assert others == {node}

        fired_at = len(watcher.history)
        async with watcher.watching():
            hypothesis, remedy, results = await run_playbook(cluster.toolbox, violation)
        assert f"node {node} is down" in hypothesis and "not running" in hypothesis, hypothesis
        assert remedy == [ToolCall("restart_node", {"node": node})]
        assert "started" in results[0]["action"] and results[0]["state"] == "RUNNING" and results[0]["pid"]
        assert results[0]["announced"] is True

        await watcher.until_cleared(NodeDown(), node)
        # the announced restart did not clear the violation: it held until the node was seen up
        views = [next(n for n in s.nodes if n.node == node) for s in watcher.history]
        assert any(v.maintenance for v in views[fired_at:])
        first_up = next(i for i in range(fired_at, len(views)) if watcher.history[i].ok and views[i].status == "up")
        for i in range(fired_at, first_up):
            assert node in {v.entity for v in NodeDown().evaluate(watcher.history[:i + 1], [])}
    finally:
        first = await fault.revert(injection.undo)
    # the agent's restart had repaired it: the revert found nothing to undo
    assert first == Reverted(f"node {node}: already running and healthy", changed=False)
    assert await fault.revert(injection.undo) == first


async def test_counter_drift_fires_future_dated_entries_and_prune_counter_clears_it(cluster: Cluster,
                                                                                   watcher: Watcher) -> None:
    lab = cluster.lab
    key = next(iter(cluster.settings.policy))
    for i in range(5):
        assert (await lab.store.check(key, 1, f"legit:{i}")).allowed
    fault = cluster.kit.fault("counter_drift")
    assert fault is not None and fault.default_ttl_s == 60
    params = DriftParams()
    injection = await fault.inject(None, params)
    limit = cluster.settings.policy[key]
    assert injection.target == key and len(injection.undo["members"]) == 3 * limit
    try:
        evidence = await fault.effective(injection, params)
        assert evidence is not None and evidence["count"] > limit and evidence["future_entries"] == 3 * limit

        violation = await watcher.until_violated(FutureDatedEntries(), key)
        assert violation.evidence["future_entries"] == 3 * limit and violation.evidence["limit"] == limit
        assert violation.evidence["count"] > limit * 1.1 and violation.evidence["over_limit"] is True
        # one fault, one ticket: the legitimate entries are within the limit, so over_limit stays quiet
        assert OverLimit().evaluate(watcher.history, []) == []

        hypothesis, remedy, results = await run_playbook(cluster.toolbox, violation)
        assert "future" in hypothesis and key in hypothesis, hypothesis
        assert remedy == [ToolCall("prune_counter", {"key": key})]
        assert results[0]["future_removed"] == 3 * limit

        snap = await watcher.until_cleared(FutureDatedEntries(), key)
        counter = snapshot_details(snap).counter(key)
        assert counter is not None and counter.future_entries == 0 and counter.count <= limit
        assert await fault.effective(injection, params) is None
    finally:
        await fault.revert(injection.undo)
    assert await fault.revert(injection.undo) == Reverted(f"removed 0 of {3 * limit} bogus entries from {key}",
                                                          changed=False)


async def test_counter_drift_revert_removes_exactly_its_entries(cluster: Cluster) -> None:
    store = cluster.lab.store
    fault = cluster.kit.fault("counter_drift")
    assert fault is not None
    await store.add_future_entries("api:search", ["someone-else:1"], ahead_s=600)
    await store.check("api:search", 1, "legit")
    injection = await fault.inject("api:search", DriftParams(factor=1.0))
    assert len(injection.undo["members"]) == 60
    assert await fault.effective(injection, DriftParams()) is not None
    assert await fault.revert(injection.undo) == Reverted("removed 60 of 60 bogus entries from api:search")
    assert await fault.revert(injection.undo) == Reverted("removed 0 of 60 bogus entries from api:search",
                                                          changed=False)
    members = {m for m, _ in await store.entries("api:search")}
    assert members == {"someone-else:1", "legit:1"}
    await store.reset("api:search")


async def _state(cluster: Cluster) -> dict[str, Any]:
    """Everything a refused request could have changed."""
    lab, settings = cluster.lab, cluster.settings
    return {
        "pids": [await lab.control.pid(n) for n in settings.node_urls],
        "windows": sorted(await lab.store.redis.keys(f"{settings.key_prefix}:w:*")),
        "limits": await lab.store.limits(),
        "memory": await lab.backend.memory_config(),
        "paused": (await lab.backend.info()).get("paused_actions"),
        "fail_open": [(await lab.node_call(n, "GET", "/admin/faults"))[1]["fail_open"]
                      for n in settings.node_urls],
    }


async def test_targets_outside_the_lab_and_bad_parameters_are_refused_and_nothing_changes(
        cluster: Cluster) -> None:
    assert cluster.kit.targets() == ["node-1", "node-2", "node-3", *cluster.settings.policy, "redis"]
    before = await _state(cluster)

    def fault(kind: str) -> Fault:
        f = cluster.kit.fault(kind)
        assert f is not None
        return f

    refused: list[tuple[Fault, str | None, BaseModel, str]] = [
        (fault("node_kill"), "node-9", NoArgs(), "unknown node 'node-9'"),
        (fault("node_kill"), "redis", NoArgs(), "unknown node 'redis'"),
        (fault("counter_drift"), "user:mallory", DriftParams(), "unknown key 'user:mallory'"),
        (fault("ghost_allowing"), "node-9", NoArgs(), "unknown node 'node-9'"),
        (fault("ghost_allowing"), "user:alice", NoArgs(), "unknown node 'user:alice'"),
        (fault("redis_pause"), "node-1", PauseParams(), "targets the lab's Redis"),
        (fault("redis_oom"), "127.0.0.1:6379", OomParams(), "targets the lab's Redis"),
        (fault("limit_misconfig"), "user:mallory", MisconfigParams(), "unknown key 'user:mallory'"),
        (fault("limit_misconfig"), "user:alice", MisconfigParams(limit=before["limits"]["user:alice"]),
         "changes nothing"),
        (fault("hot_key_burst"), "*", BurstParams(), "unknown key '\\*'"),
    ]
    for f, target, params, message in refused:
        with pytest.raises(RefusedError, match=message):
            await f.inject(target, params)
    with pytest.raises(RefusedError, match="unknown node 'localhost'"):
        await fault("node_kill").revert({"node": "localhost"})
    with pytest.raises(RefusedError, match="unknown key"):
        await fault("counter_drift").revert({"key": "other", "members": ["x"]})
    with pytest.raises(RefusedError, match="unknown node"):
        await fault("ghost_allowing").revert({"node": "10.0.0.1"})
    with pytest.raises(RefusedError, match="bad undo data"):
        await fault("redis_oom").revert({"maxmemory": 1, "maxmemory_policy": "volatile-lru; FLUSHALL"})
    with pytest.raises(RefusedError, match="bad undo data"):
        await fault("limit_misconfig").revert({"key": "user:alice", "previous": "40"})

    for model, raw in [(DriftParams, {"factor": 3, "script": "x"}), (MisconfigParams, {"factor": 2, "limit": 3}),
                       (MisconfigParams, {"factor": 0}), (MisconfigParams, {"limit": -1}),
                       (BurstParams, {"factor": 0.5}), (BurstParams, {"duration_s": 10_000}),
                       (PauseParams, {"pause_s": 0}), (PauseParams, {"mode": "ALL"}), (OomParams, {"fraction": 1.5}),
                       (NoArgs, {"node": "node-1"})]:
        with pytest.raises(ValidationError):
            model.model_validate(raw)

    for tool, args in [("reset_counter", {"key": "user:mallory"}), ("prune_counter", {"key": "*"}),
                       ("restart_node", {"node": "supervisord"}), ("restart_node", {"node": "x", "force": True}),
                       ("node_status", {"node": "redis"}), ("set_limit", {"key": "user:mallory"}),
                       ("set_limit", {"key": "user:alice", "limit": 1000}),
                       ("set_limit", {"key": "user:alice", "limit": 9})]:
        with pytest.raises(RefusedError):
            await _tool(cluster.toolbox, tool).call(args)
    for tool, args in [("reset_counter", {"key": "user:alice", "cmd": "FLUSHALL"}), ("list_nodes", {"all": True}),
                       ("set_limit", {"key": "user:alice", "limit": -1}), ("unpause_redis", {"command": "x"}),
                       ("set_memory_limit", {"maxmemory": 1}), ("redis_info", {"section": "all"})]:
        with pytest.raises(ValidationError):
            await _tool(cluster.toolbox, tool).call(args)

    assert await _state(cluster) == before


def _tool(toolbox: Toolbox, name: str) -> Tool:
    tool = toolbox.tool(name)
    assert tool is not None, name
    return tool


async def test_read_only_tools(cluster: Cluster) -> None:
    toolbox = cluster.toolbox
    assert {t.name: t.mutating for t in toolbox.tools()} == {
        "list_nodes": False, "node_status": False, "read_counters": False, "read_policy": False,
        "redis_info": False, "reset_counter": True, "prune_counter": True, "set_limit": True,
        "restart_node": True, "unpause_redis": True, "set_memory_limit": True,
    }
    nodes = await _tool(toolbox, "list_nodes").call({})
    assert [(n["node"], n["status"], n["process"]) for n in nodes["nodes"]] == [
        (f"node-{i}", "up", "RUNNING") for i in (1, 2, 3)]
    policy = await _tool(toolbox, "read_policy").call({})
    assert policy["declared"] == cluster.settings.policy == policy["effective"]
    counters = await _tool(toolbox, "read_counters").call({})
    assert [c["key"] for c in counters["counters"]] == list(cluster.settings.policy)
    assert counters["window_s"] == cluster.settings.window_s

    await cluster.lab.store.check("user:bob", 1, "status-probe")
    status = await _tool(toolbox, "node_status").call({"node": "node-2"})
    assert status["health"]["ok"] and status["process"] == "RUNNING" and status["pid"] > 0
    assert status["heartbeat"]["status"] == "up" and set(status["checks"]["since_start"]) >= {"allowed", "blocked"}

    info = await _tool(toolbox, "redis_info").call({})
    assert info["reachable"] and info["ping_ms"] > 0 and info["write"]["kind"] == "ok"
    assert not info["paused"] and not info["out_of_memory"] and info["memory_matches_declared"]
    assert info["declared"] == {"maxmemory": 0, "maxmemory_policy": "noeviction"}
    assert info["memory"]["used_memory"] > 0 and "valkey_version" in info["info"]


def test_over_limit_without_future_entries_resets_the_counter() -> None:
    playbook = next(p for p in RateLimiterToolbox().playbooks() if p.invariant == "over_limit")
    evidence = {"entity": "user:bob", "key": "user:bob", "count": 40, "limit": 25, "future_entries": 0}
    findings = {"read_counters": {"counters": [{"key": "user:bob", "count": 40, "limit": 25,
                                                "future_entries": 0}]}}
    assert playbook.remedy(evidence, findings) == [ToolCall("reset_counter", {"key": "user:bob"})]
    assert "no future-dated entries" in playbook.hypothesis(evidence, findings)


async def test_an_undo_derived_from_the_target_alone_repairs_node_and_key_faults(cluster: Cluster) -> None:
    """What a chaos service that died mid-injection (undo never recorded) can still repair."""
    kit, store = cluster.kit, cluster.lab.store
    ghost, misconfig, drift = (kit.fault(k) for k in ("ghost_allowing", "limit_misconfig", "counter_drift"))
    assert ghost is not None and misconfig is not None and drift is not None
    await ghost.inject("node-3", NoArgs())
    await misconfig.inject("user:bob", MisconfigParams(factor=4))
    assert (await store.limits())["user:bob"] == 100

    undo = ghost.undo_for_target("node-3", NoArgs())
    assert undo == {"node": "node-3"} and await ghost.revert(undo) == Reverted("node node-3: fail-open cleared")
    undo = misconfig.undo_for_target("user:bob", MisconfigParams())
    assert undo == {"key": "user:bob", "previous": 25}
    assert (await misconfig.revert(undo)).detail.startswith("limit of user:bob restored to 25 (was 100")
    assert (await store.limits())["user:bob"] == 25
    assert drift.undo_for_target("user:bob", DriftParams()) is None
    kill, burst = kit.fault("node_kill"), kit.fault("hot_key_burst")
    assert kill is not None and burst is not None
    assert kill.undo_for_target("node-2", NoArgs()) == {"node": "node-2"}
    assert not (await burst.revert(burst.undo_for_target("user:bob", BurstParams()) or {})).changed


async def test_a_frozen_node_is_stopped_and_started_once_its_grace_is_over(cluster: Cluster) -> None:
    lab = cluster.lab
    before = await lab.control.pid("node-3")
    await lab.control.signal("node-3", "STOP")  # RUNNING to supervisord, but /health never answers
    try:
        done = await lab.ensure_running("node-3", 30.0)  # the grace (3 s) outlasts a node's start
    finally:  # a frozen node must not outlive the test (SIGCONT to a new process is harmless)
        await lab.control.signal("node-3", "CONT")
    assert done.startswith("stopped unresponsive process (") and done.endswith("(was STOPPED)"), done
    assert done.count("stopped unresponsive process") == 1, done
    assert await lab.control.pid("node-3") != before
    assert (await lab.wait_healthy("node-3", 10.0)).ok
    assert await lab.ensure_running("node-3", 10.0) == "already running and healthy"

"""Each invariant fires on a real injected fault, from real observe() snapshots, and clears after
the playbook's remedy run through the real tools. Refusals change nothing; reverts are idempotent."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from subjects.base import NoArgs, Playbook, RefusedError, ToolCall, Violation
from subjects.ratelimiter import RateLimiterAdapter
from subjects.ratelimiter.faults import DriftParams
from subjects.ratelimiter.invariants import NodeDown, OverLimit
from tests.subjects.ratelimiter.conftest import Cluster, Watcher, eventually


async def run_playbook(adapter: RateLimiterAdapter, violation: Violation) -> tuple[str, list[ToolCall], list[Any]]:
    """What the rules policy does: diagnose with read-only tools, state a hypothesis, apply the remedy."""
    playbook: Playbook = next(p for p in adapter.playbooks() if p.invariant == violation.invariant)
    evidence = {**violation.evidence, "entity": violation.entity}
    findings: dict[str, Any] = {}
    for call in playbook.diagnose(evidence):
        tool = adapter.tool(call.tool)
        assert tool is not None and not tool.mutating
        findings[call.tool] = await tool.call(call.args)
    hypothesis = playbook.hypothesis(evidence, findings)
    remedy = playbook.remedy(evidence, findings)
    results = []
    for call in remedy:
        tool = adapter.tool(call.tool)
        assert tool is not None and tool.mutating
        results.append(await tool.call(call.args))
    return hypothesis, remedy, results


async def test_node_kill_fires_node_down_and_restart_node_clears_it(cluster: Cluster, watcher: Watcher) -> None:
    adapter = cluster.adapter
    fault = adapter.fault("node_kill")
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

        hypothesis, remedy, results = await run_playbook(adapter, violation)
        assert f"node {node} is down" in hypothesis and "not running" in hypothesis, hypothesis
        assert remedy == [ToolCall("restart_node", {"node": node})]
        assert "started" in results[0]["action"] and results[0]["state"] == "RUNNING" and results[0]["pid"]

        await watcher.until_cleared(NodeDown(), node)
    finally:
        first = await fault.revert(injection.undo)
    assert "already running" in first
    assert "already running" in await fault.revert(injection.undo)


async def test_counter_drift_fires_over_limit_and_prune_counter_clears_it(cluster: Cluster,
                                                                          watcher: Watcher) -> None:
    adapter = cluster.adapter
    key = next(iter(cluster.settings.policy))
    for i in range(5):
        assert (await adapter.store.check(key, 1, f"legit:{i}")).allowed
    fault = adapter.fault("counter_drift")
    assert fault is not None and fault.default_ttl_s == 60
    params = DriftParams()
    injection = await fault.inject(None, params)
    limit = cluster.settings.policy[key]
    assert injection.target == key and len(injection.undo["members"]) == 3 * limit
    try:
        evidence = await fault.effective(injection, params)
        assert evidence is not None and evidence["count"] > limit and evidence["future_entries"] == 3 * limit

        violation = await watcher.until_violated(OverLimit(), key)
        assert violation.evidence["future_entries"] == 3 * limit and violation.evidence["limit"] == limit
        assert violation.evidence["count"] > limit * 1.1

        hypothesis, remedy, results = await run_playbook(adapter, violation)
        assert "future" in hypothesis and key in hypothesis, hypothesis
        assert remedy == [ToolCall("prune_counter", {"key": key})]
        assert results[0]["future_removed"] == 3 * limit

        snap = await watcher.until_cleared(OverLimit(), key)
        counter = next(c for c in snap.counters if c.key == key)
        assert counter.future_entries == 0 and counter.count <= limit
        assert await fault.effective(injection, params) is None
    finally:
        await fault.revert(injection.undo)
    assert await fault.revert(injection.undo) == f"removed 0 of {3 * limit} bogus entries from {key}"


async def test_counter_drift_revert_removes_exactly_its_entries(cluster: Cluster) -> None:
    adapter = cluster.adapter
    fault = adapter.fault("counter_drift")
    assert fault is not None
    await adapter.store.add_future_entries("api:search", ["someone-else:1"], ahead_s=600)
    await adapter.store.check("api:search", 1, "legit")
    injection = await fault.inject("api:search", DriftParams(factor=1.0))
    assert len(injection.undo["members"]) == 60
    assert await fault.effective(injection, DriftParams()) is not None
    assert await fault.revert(injection.undo) == "removed 60 of 60 bogus entries from api:search"
    assert await fault.revert(injection.undo) == "removed 0 of 60 bogus entries from api:search"
    members = {m for m, _ in await adapter.store.entries("api:search")}
    assert members == {"someone-else:1", "legit:1"}
    await adapter.store.reset("api:search")


async def test_targets_outside_the_lab_are_refused_and_nothing_changes(cluster: Cluster) -> None:
    adapter = cluster.adapter
    assert adapter.targets() == ["node-1", "node-2", "node-3", *cluster.settings.policy]
    before_nodes = [await adapter.control.pid(n) for n in cluster.settings.node_urls]
    before_keys = sorted(await adapter.store.redis.keys(f"{cluster.settings.key_prefix}:w:*"))

    kill, drift = adapter.fault("node_kill"), adapter.fault("counter_drift")
    assert kill is not None and drift is not None
    with pytest.raises(RefusedError, match="unknown node 'node-9'"):
        await kill.inject("node-9", NoArgs())
    with pytest.raises(RefusedError, match="unknown node 'localhost'"):
        await kill.revert({"node": "localhost"})
    with pytest.raises(RefusedError, match="unknown key 'user:mallory'"):
        await drift.inject("user:mallory", DriftParams())
    with pytest.raises(RefusedError, match="unknown key"):
        await drift.revert({"key": "other", "members": ["x"]})
    for tool, args in [("reset_counter", {"key": "user:mallory"}), ("prune_counter", {"key": "*"}),
                       ("restart_node", {"node": "supervisord"})]:
        t = adapter.tool(tool)
        assert t is not None
        with pytest.raises(RefusedError):
            await t.call(args)
    with pytest.raises(ValidationError):
        await adapter.tool("reset_counter").call({"key": "user:alice", "cmd": "FLUSHALL"})  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        await adapter.tool("list_nodes").call({"all": True})  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        DriftParams.model_validate({"factor": 3, "script": "x"})

    assert [await adapter.control.pid(n) for n in cluster.settings.node_urls] == before_nodes
    assert sorted(await adapter.store.redis.keys(f"{cluster.settings.key_prefix}:w:*")) == before_keys


async def test_read_only_tools(cluster: Cluster) -> None:
    adapter = cluster.adapter
    assert {t.name: t.mutating for t in adapter.tools()} == {
        "list_nodes": False, "read_counters": False, "read_policy": False,
        "reset_counter": True, "prune_counter": True, "restart_node": True,
    }
    nodes = await adapter.tool("list_nodes").call({})  # type: ignore[union-attr]
    assert [(n["node"], n["status"], n["process"]) for n in nodes["nodes"]] == [
        (f"node-{i}", "up", "RUNNING") for i in (1, 2, 3)]
    policy = await adapter.tool("read_policy").call({})  # type: ignore[union-attr]
    assert policy["declared"] == cluster.settings.policy == policy["effective"]
    counters = await adapter.tool("read_counters").call({})  # type: ignore[union-attr]
    assert [c["key"] for c in counters["counters"]] == list(cluster.settings.policy)
    assert counters["window_s"] == cluster.settings.window_s


def test_over_limit_without_future_entries_resets_the_counter() -> None:
    playbook = next(p for p in RateLimiterAdapter().playbooks() if p.invariant == "over_limit")
    evidence = {"entity": "user:bob", "key": "user:bob", "count": 40, "limit": 25, "future_entries": 0}
    findings = {"read_counters": {"counters": [{"key": "user:bob", "count": 40, "limit": 25,
                                                "future_entries": 0}]}}
    assert playbook.remedy(evidence, findings) == [ToolCall("reset_counter", {"key": "user:bob"})]
    assert "no future-dated entries" in playbook.hypothesis(evidence, findings)

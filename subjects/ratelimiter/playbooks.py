"""The rules policy's knowledge of the rate limiter, one playbook per invariant.

Each playbook reads the violation's evidence (which carries ``entity``, plus
``node``/``key`` from the invariant) and the results of its read-only
diagnosis calls (keyed by tool name), states a hypothesis, and picks remedy
calls. An empty remedy means "escalate": the rules never guess.

| invariant | diagnosis | remedy |
|---|---|---|
| node_down | list_nodes | restart_node |
| over_limit | read_counters | prune_counter if future-dated entries, else reset_counter |
| future_dated_entries | read_counters | prune_counter |
| node_over_admitting | node_status (the node named by the per-node evidence) | restart_node with force |
| redis_unavailable | redis_info | unpause_redis if paused/writes time out; set_memory_limit if OOM; else escalate |
| high_latency | redis_info | unpause_redis if paused; else escalate |
| error_rate | redis_info | set_memory_limit if OOM; unpause_redis if paused; else escalate |
| limit_policy_drift | read_policy | set_limit to the declared value |
| observer_blind | list_nodes | escalate (no tool can give the observer its sight back) |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from subjects.contract import Playbook, ToolCall, call_on, diagnose_with, entity_of, escalate, finding


def _node_row(findings: dict[str, Any], node: str) -> dict[str, Any] | None:
    listing = findings.get("list_nodes")
    rows = listing.get("nodes", []) if isinstance(listing, dict) else listing or []
    return next((r for r in rows if isinstance(r, dict) and r.get("node") == node), None)


def _counter_row(findings: dict[str, Any], key: str) -> dict[str, Any] | None:
    reading = findings.get("read_counters")
    rows = reading.get("counters", []) if isinstance(reading, dict) else reading or []
    return next((r for r in rows if isinstance(r, dict) and r.get("key") == key), None)


# -- node_down ------------------------------------------------------------------


def _node_down_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    node = entity_of(evidence, "node")
    row = _node_row(findings, node)
    if row is None:
        return f"node {node} is down; it does not appear in the node list"
    process = str(row.get("process", "unknown"))
    if row.get("status") == "up":
        return f"node {node} was down but reads up again (process {process}); restarting is harmless"
    if process.startswith(("RUNNING", "STARTING")):
        return (f"node {node} is down although its process is {process}: it is unhealthy "
                f"({row.get('detail') or 'no detail'}); a restart should recover it")
    return (f"node {node} is down (process not running: {process}; last heartbeat "
            f"{row.get('last_seen') or 'never'}); starting it should recover it")


# -- over_limit -----------------------------------------------------------------


def _future(evidence: dict[str, Any], findings: dict[str, Any]) -> int:
    row = _counter_row(findings, entity_of(evidence, "key"))
    source = row if row is not None else evidence
    try:
        return int(source.get("future_entries") or 0)
    except (TypeError, ValueError):
        return 0


def _over_limit_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    key = entity_of(evidence, "key")
    row = _counter_row(findings, key) or evidence
    count, limit, future = row.get("count"), row.get("limit"), _future(evidence, findings)
    if future > 0:
        return (f"key {key} reads {count}/{limit}: its window holds {future} bogus entries dated in the "
                f"future (written with a clock far ahead), which never age out and block real traffic")
    return (f"key {key} reads {count}/{limit} with no future-dated entries: the window is over its limit "
            f"(e.g. the limit was lowered); resetting the window restores enforcement")


def _over_limit_remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    key = entity_of(evidence, "key")
    if not key:
        return []
    tool = "prune_counter" if _future(evidence, findings) > 0 else "reset_counter"
    return [ToolCall(tool, {"key": key})]


# -- future_dated_entries ----------------------------------------------------------------


def _future_dated_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    key = entity_of(evidence, "key")
    row = _counter_row(findings, key) or evidence
    future = _future(evidence, findings)
    if future <= 0:
        return f"key {key} held future-dated entries but none are left now; pruning is harmless"
    return (f"key {key}'s window holds {future} entries dated in the future (written with a clock far "
            f"ahead); they never age out and count against the limit ({row.get('count')}/{row.get('limit')}); "
            f"pruning them keeps the legitimate entries")


# -- node_over_admitting ---------------------------------------------------------------


def _over_admitting_keys(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    keys = evidence.get("keys")
    return [k for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []


def _over_admitting_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    node = entity_of(evidence, "node")
    parts = []
    for k in _over_admitting_keys(evidence):
        by_node = k.get("by_node") if isinstance(k.get("by_node"), dict) else {}
        own = by_node.get(node, {})
        peers = [f"{n} blocked {c.get('blocked')}/{c.get('allowed', 0) + c.get('blocked', 0)}"
                 for n, c in by_node.items() if n != node and isinstance(c, dict)]
        parts.append(f"on {k.get('key')} (limit {k.get('limit')}) clients got {k.get('allowed')} through, "
                     f"{node} blocked {own.get('blocked')}/{own.get('allowed', 0) + own.get('blocked', 0)}"
                     + (f" while {', '.join(peers)}" if peers else ""))
    status = finding(findings, "node_status")
    health = status.get("health", {}) if isinstance(status.get("health"), dict) else {}
    state = f"it reads healthy ({status.get('process', 'unknown')})" if health.get("ok") else \
        f"its health reads {health.get('detail', 'unknown')}"
    return (f"node {node} admits requests the shared window would block (fails open): "
            f"{'; '.join(parts) or 'per-node evidence'}; {state}, so the fault is in the process's state, "
            f"and a restart clears it")


# -- the store: redis_unavailable, high_latency, error_rate -------------------------


def _store_state(findings: dict[str, Any]) -> str:
    """``unreachable``, ``paused``, ``oom`` or ``healthy``, from redis_info."""
    info = finding(findings, "redis_info")
    if not info.get("reachable", False):
        return "unreachable"
    if info.get("out_of_memory"):
        return "oom"
    if info.get("paused"):
        return "paused"
    return "healthy"


def _describe_store(findings: dict[str, Any]) -> str:
    info = finding(findings, "redis_info")
    state = _store_state(findings)
    write = info.get("write") if isinstance(info.get("write"), dict) else {}
    if state == "unreachable":
        return f"Redis at {info.get('address', '?')} cannot be reached ({info.get('error') or 'no answer'})"
    if state == "oom":
        memory = info.get("memory") if isinstance(info.get("memory"), dict) else {}
        declared = info.get("declared") if isinstance(info.get("declared"), dict) else {}
        return (f"Redis is out of memory: {memory.get('used_memory')} bytes used against maxmemory "
                f"{memory.get('maxmemory')} ({memory.get('maxmemory_policy')}), writes refused "
                f"({write.get('error') or 'OOM'}); the lab declares maxmemory {declared.get('maxmemory')} "
                f"({declared.get('maxmemory_policy')})")
    if state == "paused":
        actions = info.get("paused_actions") or "writes (a write probe timed out)"
        return f"Redis answers reads but is paused for {actions}: every rate check, being a write, stalls"
    return f"Redis reads healthy now (PING {info.get('ping_ms')} ms, writes {write.get('kind', '?')})"


def _store_remedy(states: dict[str, str]) -> Callable[[dict[str, Any], dict[str, Any]], list[ToolCall]]:
    def remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
        tool = states.get(_store_state(findings))
        return [ToolCall(tool)] if tool else []

    return remedy


def _unavailable_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    state = _store_state(findings)
    tail = {"unreachable": "; no tool here can start Redis: escalate",
            "paused": "; lifting the pause restores service",
            "oom": "; restoring the declared memory limit lets writes through again",
            "healthy": "; it recovered by itself, nothing to do"}[state]
    return _describe_store(findings) + tail


def _latency_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    p99 = evidence.get("p99_ms")
    state = _store_state(findings)
    lead = f"checks are slow (p99 {p99} ms); "
    if state == "paused":
        return lead + _describe_store(findings) + "; lifting the pause restores latency"
    return lead + _describe_store(findings) + "; no safe remedy for slowness with a healthy store: escalate"


def _error_rate_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    lead = (f"{evidence.get('errors')} of {evidence.get('sent')} checks failed "
            f"(ratio {evidence.get('error_ratio')}); every node failed them, so the shared store is the suspect: ")
    tail = {"oom": "; restoring the declared memory limit lets checks write again",
            "paused": "; lifting the pause restores service",
            "unreachable": "; no tool here can start Redis: escalate",
            "healthy": "; with Redis healthy there is no safe remedy: escalate"}[_store_state(findings)]
    return lead + _describe_store(findings) + tail


# -- limit_policy_drift -----------------------------------------------------------


def _declared(evidence: dict[str, Any], findings: dict[str, Any]) -> tuple[Any, Any]:
    key = entity_of(evidence, "key")
    policy = finding(findings, "read_policy")
    declared = (policy.get("declared") or {}).get(key, evidence.get("declared_limit"))
    effective = (policy.get("effective") or {}).get(key, evidence.get("limit"))
    return declared, effective


def _policy_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    key = entity_of(evidence, "key")
    declared, effective = _declared(evidence, findings)
    if declared == effective:
        return f"key {key}'s limit is back to the declared {declared}; setting it again is harmless"
    effect = "lets clients through above the policy" if isinstance(effective, int) and isinstance(
        declared, int) and effective > declared else "blocks legitimate clients the policy admits"
    return (f"key {key} is limited to {effective} per window but the policy declares {declared}: the limit "
            f"was changed through the management API and {effect}; restore the declared limit")


def _policy_remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    key = entity_of(evidence, "key")
    declared, _ = _declared(evidence, findings)
    if not key or not isinstance(declared, int):
        return []
    return [ToolCall("set_limit", {"key": key, "limit": declared})]


# -- observer_blind ---------------------------------------------------------------


def _blind_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    return (f"the observer cannot read the rate limiter ({evidence.get('error') or 'unknown error'}); "
            f"the shared store or the network to it is the likely cause, which no tool here can fix")


def playbooks() -> list[Playbook]:
    return [
        Playbook("node_down", diagnose_with("list_nodes"), _node_down_hypothesis, call_on("restart_node", "node")),
        Playbook("over_limit", diagnose_with("read_counters"), _over_limit_hypothesis, _over_limit_remedy),
        Playbook("future_dated_entries", diagnose_with("read_counters"), _future_dated_hypothesis,
                 call_on("prune_counter", "key")),
        Playbook("node_over_admitting", call_on("node_status", "node"), _over_admitting_hypothesis,
                 call_on("restart_node", "node", force=True)),
        Playbook("redis_unavailable", diagnose_with("redis_info"), _unavailable_hypothesis,
                 _store_remedy({"paused": "unpause_redis", "oom": "set_memory_limit"})),
        Playbook("high_latency", diagnose_with("redis_info"), _latency_hypothesis,
                 _store_remedy({"paused": "unpause_redis"})),
        Playbook("error_rate", diagnose_with("redis_info"), _error_rate_hypothesis,
                 _store_remedy({"oom": "set_memory_limit", "paused": "unpause_redis"})),
        Playbook("limit_policy_drift", diagnose_with("read_policy"), _policy_hypothesis, _policy_remedy),
        Playbook("observer_blind", diagnose_with("list_nodes"), _blind_hypothesis, escalate),
    ]

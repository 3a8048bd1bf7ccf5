"""The rules policy's knowledge of the rate limiter, one playbook per invariant.

Each playbook reads the violation's evidence (which carries ``entity``, plus
``node``/``key`` from the invariant) and the results of its read-only
diagnosis calls (keyed by tool name), states a hypothesis, and picks remedy
calls. An empty remedy means "escalate": the rules never guess.
"""

from __future__ import annotations

from typing import Any

from subjects.base import Playbook, ToolCall


def _entity(evidence: dict[str, Any], field: str) -> str:
    return str(evidence.get(field) or evidence.get("entity") or "")


def _node_row(findings: dict[str, Any], node: str) -> dict[str, Any] | None:
    listing = findings.get("list_nodes")
    rows = listing.get("nodes", []) if isinstance(listing, dict) else listing or []
    return next((r for r in rows if isinstance(r, dict) and r.get("node") == node), None)


def _counter_row(findings: dict[str, Any], key: str) -> dict[str, Any] | None:
    reading = findings.get("read_counters")
    rows = reading.get("counters", []) if isinstance(reading, dict) else reading or []
    return next((r for r in rows if isinstance(r, dict) and r.get("key") == key), None)


# -- node_down ------------------------------------------------------------------


def _node_down_diagnose(evidence: dict[str, Any]) -> list[ToolCall]:
    return [ToolCall("list_nodes")]


def _node_down_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    node = _entity(evidence, "node")
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


def _node_down_remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    node = _entity(evidence, "node")
    return [ToolCall("restart_node", {"node": node})] if node else []


# -- over_limit -----------------------------------------------------------------


def _over_limit_diagnose(evidence: dict[str, Any]) -> list[ToolCall]:
    return [ToolCall("read_counters")]


def _future(evidence: dict[str, Any], findings: dict[str, Any]) -> int:
    row = _counter_row(findings, _entity(evidence, "key"))
    source = row if row is not None else evidence
    try:
        return int(source.get("future_entries") or 0)
    except (TypeError, ValueError):
        return 0


def _over_limit_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    key = _entity(evidence, "key")
    row = _counter_row(findings, key) or evidence
    count, limit, future = row.get("count"), row.get("limit"), _future(evidence, findings)
    if future > 0:
        return (f"key {key} reads {count}/{limit}: its window holds {future} bogus entries dated in the "
                f"future (written with a clock far ahead), which never age out and block real traffic")
    return (f"key {key} reads {count}/{limit} with no future-dated entries: the window is over its limit "
            f"(e.g. the limit was lowered); resetting the window restores enforcement")


def _over_limit_remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    key = _entity(evidence, "key")
    if not key:
        return []
    tool = "prune_counter" if _future(evidence, findings) > 0 else "reset_counter"
    return [ToolCall(tool, {"key": key})]


# -- observer_blind ---------------------------------------------------------------


def _blind_diagnose(evidence: dict[str, Any]) -> list[ToolCall]:
    return [ToolCall("list_nodes")]


def _blind_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    return (f"the observer cannot read the rate limiter ({evidence.get('error') or 'unknown error'}); "
            f"the shared store or the network to it is the likely cause, which no tool here can fix")


def _blind_remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    return []


def playbooks() -> list[Playbook]:
    return [
        Playbook("node_down", _node_down_diagnose, _node_down_hypothesis, _node_down_remedy),
        Playbook("over_limit", _over_limit_diagnose, _over_limit_hypothesis, _over_limit_remedy),
        Playbook("observer_blind", _blind_diagnose, _blind_hypothesis, _blind_remedy),
    ]

"""The rules policy's knowledge of TiKV, one playbook per invariant.

| invariant | diagnosis | remedy |
|---|---|---|
| store_not_up | store_detail | by its process (see :func:`store_remedy`) |
| regions_under_replicated | list_stores | the store remedy for the first store not up; none: escalate |
| pd_no_healthy_leader | pd_members | start_pd_member for a member whose process is not running; else escalate |
| pd_member_down | pd_members | start_pd_member |
| kv_error_rate | list_stores, recent_client_errors | the store remedy for a store that is not up; else escalate |
| acknowledged_write_lost | recent_client_errors, region_health | escalate: no tool brings acknowledged data back |
| observer_blind | pd_members | escalate |

The store remedy, by the store's process: exited → ``start_store``; paused →
``unpause_store``; disconnected, or running with a silent status port →
``reconnect_store``; ``Offline`` in PD → ``set_store_up``. An empty remedy means
escalate: the rules never guess.
"""

from __future__ import annotations

from typing import Any

from subjects.contract import Playbook, ToolCall, call_on, diagnose_with, entity_of, escalate, finding


def _rows(findings: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in finding(findings, "list_stores").get("stores", []) if isinstance(r, dict)]


def _up(row: dict[str, Any]) -> bool:
    return row.get("pd_state") == "Up" and row.get("status_port") == "ok"


def store_remedy(row: dict[str, Any] | None) -> list[ToolCall]:
    """What brings this store (a ``store_detail`` / ``list_stores`` row) back, from its process state."""
    if not isinstance(row, dict) or not row.get("store"):
        return []
    store, process = str(row["store"]), str(row.get("process", ""))
    if process.startswith(("exited", "dead", "created")):
        return [ToolCall("start_store", {"store": store})]
    if process.startswith("paused"):
        return [ToolCall("unpause_store", {"store": store})]
    if process.startswith("disconnected"):
        return [ToolCall("reconnect_store", {"store": store})]
    if row.get("pd_state") == "Offline":
        return [ToolCall("set_store_up", {"store": store})]
    if process.startswith("running") and row.get("status_port") != "ok":
        return [ToolCall("reconnect_store", {"store": store})]  # a partition the process cannot report
    if process.startswith("running") and _up(row):
        return [ToolCall("start_store", {"store": store})]  # it recovered: starting a running store is harmless
    return []


def _describe(row: dict[str, Any] | None) -> str:
    if not isinstance(row, dict):
        return "it is not in PD's store list"
    return (f"PD reads it {row.get('pd_state')}, its status port {row.get('status_port')}, its process is "
            f"{row.get('process')}")


# -- store_not_up ------------------------------------------------------------------


def _detail(findings: dict[str, Any]) -> dict[str, Any] | None:
    row = findings.get("store_detail")
    return row if isinstance(row, dict) else None


def _store_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    store = entity_of(evidence, "store")
    row = _detail(findings)
    remedy = store_remedy(row)
    what = {"start_store": "its process is not running: starting it should bring it back",
            "unpause_store": "its process is paused: resuming it should bring it back",
            "reconnect_store": "it runs but does not reach the cluster: reconnecting it should bring it back",
            "set_store_up": "PD is removing it although nobody meant to: setting it Up cancels that"}
    action = what.get(remedy[0].tool, "") if remedy else "no tool here can bring it back: escalate"
    return f"store {store} is not up: {_describe(row)}; {action}"


def _store_remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    return store_remedy(_detail(findings))


# -- the cluster-wide symptoms ----------------------------------------------------------


def _first_down(findings: dict[str, Any]) -> dict[str, Any] | None:
    return next((r for r in _rows(findings) if not _up(r) and r.get("pd_state") != "Tombstone"), None)


def _regions_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    row = _first_down(findings)
    lead = (f"{evidence.get('miss_peer', '?')} region(s) miss a peer and {evidence.get('down_peer', '?')} have a "
            f"down peer")
    if row is None:
        return f"{lead} while every store reads up: placement needs a human: escalate"
    return f"{lead} because store {row.get('store')} is not up ({_describe(row)}); bringing it back heals them"


def _regions_remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    return store_remedy(_first_down(findings))


def _errors_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    row = _first_down(findings)
    probe = finding(findings, "recent_client_errors")
    lead = (f"{evidence.get('errors')} of {evidence.get('sent')} KV operations failed; a probe now: "
            f"{probe.get('errors')}")
    if row is None:
        return f"{lead}; every store reads up, so no store remedy applies: escalate"
    return f"{lead}; store {row.get('store')} is not up ({_describe(row)}), the likely cause"


# -- PD ----------------------------------------------------------------------------------


def _members(findings: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in finding(findings, "pd_members").get("members", []) if isinstance(m, dict)]


def _stopped_member(findings: dict[str, Any], name: str | None = None) -> dict[str, Any] | None:
    return next((m for m in _members(findings) if (name is None or m.get("name") == name)
                 and str(m.get("process", "")).startswith(("exited", "dead", "created"))), None)


def _pd_leader_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    stopped = _stopped_member(findings)
    lead = f"PD: {evidence.get('reason', 'no healthy leader')}"
    if stopped is None:
        return f"{lead}; every member's process runs, so the election is PD's own business: escalate"
    return f"{lead}; member {stopped.get('name')} is not running, and starting it restores PD's quorum"


def _pd_leader_remedy(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    stopped = _stopped_member(findings)
    return [ToolCall("start_pd_member", {"member": stopped["name"]})] if stopped else []


def _pd_member_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    member = entity_of(evidence, "member")
    row = next((m for m in _members(findings) if m.get("name") == member), {})
    return f"PD member {member} is unhealthy (process {row.get('process', 'unknown')}); starting it should recover it"


# -- data loss, blindness ------------------------------------------------------------------


def _loss_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    return (f"{evidence.get('lost')} acknowledged write(s) read back missing or different (e.g. "
            f"{', '.join([str(k) for k in evidence.get('keys') or []][:3]) or 'no key sampled'}): acknowledged data "
            "is gone, "
            "and no tool can bring it back: a human must investigate")


def _blind_hypothesis(evidence: dict[str, Any], findings: dict[str, Any]) -> str:
    return (f"the observer cannot read the cluster ({evidence.get('error') or 'unknown error'}): PD or the network "
            "to it is the likely cause, which no tool here can fix")


def playbooks() -> list[Playbook]:
    return [
        Playbook("store_not_up", call_on("store_detail", "store"), _store_hypothesis, _store_remedy),
        Playbook("regions_under_replicated", diagnose_with("list_stores"), _regions_hypothesis, _regions_remedy),
        Playbook("pd_no_healthy_leader", diagnose_with("pd_members"), _pd_leader_hypothesis, _pd_leader_remedy),
        Playbook("pd_member_down", diagnose_with("pd_members"), _pd_member_hypothesis,
                 call_on("start_pd_member", "member")),
        Playbook("kv_error_rate", diagnose_with("list_stores", "recent_client_errors"), _errors_hypothesis,
                 _regions_remedy),
        Playbook("acknowledged_write_lost", diagnose_with("recent_client_errors", "region_health"), _loss_hypothesis,
                 escalate),
        Playbook("observer_blind", diagnose_with("pd_members"), _blind_hypothesis, escalate),
    ]

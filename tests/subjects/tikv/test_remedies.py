"""Faults, tools and playbooks on the TiKV double: each store fault is real, proven, remedied by the rules
policy's playbook through typed tools, and reverted; what is outside the cluster is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from subjects.contract import RefusedError, Violation
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.fault_kit import TiKVFaultKit
from subjects.tikv.invariants import StoreNotUp
from subjects.tikv.observer import TiKVObserver
from subjects.tikv.toolbox import TiKVToolbox
from tests.fakes.tikv import TiKVDouble
from tests.subjects.playbooks import run_playbook
from tests.subjects.tikv.conftest import all_up, eventually


async def violated(observer: TiKVObserver, store: str) -> Violation:
    history = []

    async def check() -> Violation | None:
        history.append(await observer.observe())
        return next((v for v in StoreNotUp().evaluate(history, []) if v.entity == store), None)

    return await eventually(check, 10, f"store_not_up on {store}")




@pytest.mark.parametrize("kind, state, remedy", [
    ("store_kill", "exited", "start_store"),
    ("store_pause", "paused", "unpause_store"),
    ("store_partition", "running", "reconnect_store"),
])
async def test_each_store_fault_is_real_detected_and_remedied_by_its_playbook(
        double: TiKVDouble, cluster: TiKVCluster, kind: str, state: str, remedy: str) -> None:
    kit, toolbox, observer = TiKVFaultKit(cluster=cluster), TiKVToolbox(cluster=cluster), TiKVObserver(cluster=cluster)
    fault = kit.fault(kind)
    assert fault is not None
    target = await fault.resolve_target("store-2")
    injection = await fault.inject(target, fault.params_model())
    try:
        proof = await eventually(lambda: fault.effective(injection, fault.params_model()), 5, f"{kind} effective")
        assert proof["store"] == "store-2" and proof["status_port"] != "ok"
        # supervisord reads a killed process exited once it has reaped it: on a busy machine, a moment later
        async def in_state() -> bool:
            return await cluster.control.state("store-2") == state

        await eventually(in_state, 5, f"store-2 {state}")
        violation = await violated(observer, "store-2")
        hypothesis, calls, results = await run_playbook(toolbox, violation)
        assert [c.tool for c in calls] == [remedy] and calls[0].args == {"store": "store-2"}
        assert "store store-2 is not up" in hypothesis
        assert results[0]["now"] == "store-2 is Up in PD and its status port answers"
        assert await all_up(cluster)
    finally:
        first = await fault.revert(injection.undo)  # harmless after the remedy: reverting is idempotent
    assert not first.changed, first  # the remedy had repaired it: nothing left to undo
    assert not (await fault.revert(injection.undo)).changed


async def test_targets_outside_the_cluster_are_refused_before_anything_is_done(
        double: TiKVDouble, cluster: TiKVCluster) -> None:
    kit, toolbox = TiKVFaultKit(cluster=cluster), TiKVToolbox(cluster=cluster)
    await kit.refresh()
    assert kit.targets() == ["store-1", "store-2", "store-3", "pd-double", "kv"]
    with pytest.raises(RefusedError, match="unknown store 'redis': not part of the cluster"):
        await kit.fault("store_kill").resolve_target("redis")  # type: ignore[union-attr]
    with pytest.raises(RefusedError, match="unknown store 'tikv9'"):
        await toolbox.tool("start_store").call({"store": "tikv9"})  # type: ignore[union-attr]
    with pytest.raises(RefusedError, match="unknown PD member 'pd9'"):
        await toolbox.tool("transfer_pd_leader").call({"member": "pd9"})  # type: ignore[union-attr]
    with pytest.raises(RefusedError, match="this fault targets the key space"):
        await kit.fault("hot_read_burst").resolve_target("store-1")  # type: ignore[union-attr]
    assert await all_up(cluster)


async def test_the_pd_leader_can_only_be_killed_in_a_pd_of_three(double: TiKVDouble, cluster: TiKVCluster) -> None:
    fault = TiKVFaultKit(cluster=cluster).fault("pd_leader_kill")
    with pytest.raises(RefusedError, match="needs a PD of 3 members \\(this one has 1\\)"):
        await fault.resolve_target(None)  # type: ignore[union-attr]


async def test_read_only_tools_report_what_pd_and_the_processes_say(double: TiKVDouble, cluster: TiKVCluster) -> None:
    toolbox = TiKVToolbox(cluster=cluster)
    listing = await toolbox.tool("list_stores").call({})  # type: ignore[union-attr]
    assert [(s["store"], s["pd_state"], s["status_port"], s["process"]) for s in listing["stores"]] == [
        (f"store-{i}", "Up", "ok", "running") for i in (1, 2, 3)]
    health = await toolbox.tool("region_health").call({})  # type: ignore[union-attr]
    assert health["regions"] == 3 and health["miss_peer"]["count"] == 0 and health["leaderless"] == []
    members = await toolbox.tool("pd_members").call({})  # type: ignore[union-attr]
    assert members["leader"] == "pd-double" and members["members"][0]["healthy"] is True
    probe = await toolbox.tool("recent_client_errors").call({})  # type: ignore[union-attr]
    assert probe["ops"] == 20 and probe["errors"] == {"put": 0, "get": 0}
    with pytest.raises(ValidationError, match="store"):  # arguments are typed: a missing one is refused
        await toolbox.tool("store_detail").call({})  # type: ignore[union-attr]


async def test_an_accidental_offline_is_cancelled_by_setting_the_store_up(
        double: TiKVDouble, cluster: TiKVCluster) -> None:
    toolbox, observer = TiKVToolbox(cluster=cluster), TiKVObserver(cluster=cluster)
    _, info = await cluster.require_store("store-3")
    await cluster.pd.set_store_state(info.store.id, "Offline")
    try:
        snap = await observer.observe()
        assert (snap.node("store-3").status, snap.node("store-3").state) == ("degraded", "Offline")  # type: ignore[union-attr]
        detail = await toolbox.tool("store_detail").call({"store": "store-3"})  # type: ignore[union-attr]
        playbook = next(p for p in toolbox.playbooks() if p.invariant == "store_not_up")
        [call] = playbook.remedy({"entity": "store-3"}, {"store_detail": detail})
        assert call.tool == "set_store_up"
        result = await toolbox.tool("set_store_up").call(call.args)  # type: ignore[union-attr]
        assert result["previous_state"] == "Offline"
    finally:
        await cluster.pd.set_store_state(info.store.id, "Up")
    assert (await observer.observe()).node("store-3").status == "up"  # type: ignore[union-attr]


async def test_the_control_burst_is_served_and_stops_on_revert(double: TiKVDouble, cluster: TiKVCluster) -> None:
    fault = TiKVFaultKit(cluster=cluster).fault("hot_read_burst")
    assert fault is not None
    params = fault.params_model.model_validate({"rate": 200, "duration_s": 30})
    injection = await fault.inject(None, params)
    try:
        proof = await eventually(lambda: fault.effective(injection, params), 10, "burst served")
        assert proof["ok"] >= 20 and proof["errors"] == 0 and proof["running"]
    finally:
        said = await fault.revert(injection.undo)
    assert said.detail.startswith("burst stopped after") and "0 errors" in said.detail and said.changed
    again = await fault.revert(injection.undo)
    assert "not running" in again.detail and not again.changed

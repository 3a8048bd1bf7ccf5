"""The chaos service on the real stack: refusals inject nothing; a crash hands its faults over."""

from __future__ import annotations

import asyncio

import pytest

from events.bus import Bus
from events.commands import CommandError, request
from oplab.stack import Stack
from oplab.supervisor import Supervisor
from projections.timeline import RunTimeline
from tests.e2e.conftest import follow_run

pytestmark = pytest.mark.e2e


@pytest.fixture
async def quiet_stack(stack: Stack):  # type: ignore[no-untyped-def]
    """A stack whose director waits at the first chapter (interactive): nothing injected but ours."""
    info = await asyncio.to_thread(stack.up, fault="node_kill", mode="interactive")
    return stack, info


async def test_refusals_are_clear_and_inject_nothing(quiet_stack, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    _, info = quiet_stack
    log, replay = await follow_run(bus, info.run)
    cases = [
        ({"kind": "meteor_strike"}, "unknown fault kind"),
        ({"kind": "node_kill", "target": "db.example.com"}, "outside the lab"),
        ({"kind": "counter_drift", "params": {"bogus": 1}}, "bad request"),
        ({"kind": "node_kill", "ttl_s": -5}, "bad request"),
    ]
    try:
        for body, message in cases:
            with pytest.raises(CommandError) as refused:
                await request(bus.nc, "chaos", "inject", body)
            assert refused.value.code == "400"
            assert message in refused.value.description
        first = await request(bus.nc, "chaos", "inject", {"kind": "node_kill", "target": "node-2", "ttl_s": 60})
        with pytest.raises(CommandError, match="already has fault"):
            await request(bus.nc, "chaos", "inject", {"kind": "node_kill", "target": "node-2"})
        listing = await request(bus.nc, "chaos", "list")
        assert [f["fault_id"] for f in listing["faults"]] == [first["fault"]["fault_id"]]
        await request(bus.nc, "chaos", "revert", {"fault_id": first["fault"]["fault_id"]})
        await log.wait_for(lambda e: e.type == "chaos.fault_reverted", 10, "revert")
    finally:
        await replay.stop()  # type: ignore[attr-defined]
    assert len(log.of_type("chaos.fault_injected")) == 1
    assert len(log.of_type("chaos.fault_requested")) == 1


async def test_a_crashed_chaos_service_hands_its_faults_to_the_next(quiet_stack, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    """The successor adopts the fault and leaves the fixing to the agent, who gets the credit."""
    stack, info = quiet_stack
    log, replay = await follow_run(bus, info.run)
    sup = Supervisor(info.supervisor_url)
    try:
        # as the director does: break nothing before the monitor has seen the subject whole (it judges
        # nothing before that, and a node killed first would keep it waiting for its baseline timeout)
        await log.wait_for(lambda e: e.type == "inv.baseline", 30, "the monitor's baseline")
        injected = await request(bus.nc, "chaos", "inject", {"kind": "node_kill", "target": "node-3", "ttl_s": 600})
        fault_id = injected["fault"]["fault_id"]
        await log.wait_for(lambda e: e.type == "chaos.fault_effective", 15, "fault effective")
        await asyncio.to_thread(sup.signal, "chaos", "KILL")  # a crash: no cleanup runs
        await asyncio.to_thread(stack.restart, "chaos")
        adopted = await log.wait_for(lambda e: e.type == "chaos.fault_adopted", 30, "adopted after restart")
        assert adopted.data.fault_id == fault_id
        assert adopted.data.expires_at.isoformat() == injected["fault"]["expires_at"]
        resolved = await log.wait_for(lambda e: e.type == "ticket.resolved", 45, "the agent's fix")
        assert not log.of_type("chaos.fault_reverted")  # nobody undid it under the agent
        await request(bus.nc, "chaos", "revert", {"fault_id": fault_id})
        reverted = await log.wait_for(lambda e: e.type == "chaos.fault_reverted", 30, "revert")
        assert reverted.data.fault_id == fault_id and reverted.data.reason == "explicit"
        assert reverted.data.changed is False, reverted.data.detail  # the agent had restarted it
        cluster = await log.wait_for(
            lambda e: e.type == "obs.snapshot" and e.time > reverted.time
            and all(n.status == "up" for n in e.data.nodes), 15, "all nodes up again")
        assert {n.node for n in cluster.data.nodes} == {"node-1", "node-2", "node-3"}
        timeline = RunTimeline()
        for _, event in log.events:
            timeline.apply(event)
        summary = timeline.summary()
        assert summary.outcome == "resolved" and summary.resolved_by == resolved.data.by != "self-healed"
    finally:
        await replay.stop()  # type: ignore[attr-defined]


async def test_faults_end_by_ttl_or_by_explicit_revert(quiet_stack, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    _, info = quiet_stack
    log, replay = await follow_run(bus, info.run)

    def of(fault_id: str, type_name: str):  # type: ignore[no-untyped-def]
        return lambda e: e.type == type_name and e.data.fault_id == fault_id

    try:
        for body, message in (({"fault_id": "f-nope"}, "no active fault 'f-nope'"), ({}, "fault_id")):
            with pytest.raises(CommandError) as refused:
                await request(bus.nc, "chaos", "revert", body)
            assert refused.value.code == "400" and message in refused.value.description

        short = (await request(bus.nc, "chaos", "inject", {"kind": "counter_drift", "ttl_s": 1.5}))["fault"]
        kept = (await request(bus.nc, "chaos", "inject",
                              {"kind": "node_kill", "target": "node-1", "ttl_s": 600}))["fault"]
        reply = await request(bus.nc, "chaos", "revert", {"fault_id": kept["fault_id"]})
        assert reply == {"reverted": [kept["fault_id"]], "failed": []}
        explicit = await log.wait_for(of(kept["fault_id"], "chaos.fault_reverted"), 10, "explicit revert")
        assert explicit.data.reason == "explicit" and "node-1" in explicit.data.detail

        injected = await log.wait_for(of(short["fault_id"], "chaos.fault_injected"), 10, "drift injected")
        expired = await log.wait_for(of(short["fault_id"], "chaos.fault_reverted"), 15, "ttl revert")
        assert expired.data.reason == "ttl"
        assert expired.time >= injected.data.expires_at
        assert (await request(bus.nc, "chaos", "list"))["faults"] == []
        with pytest.raises(CommandError, match="no active fault") as again:
            await request(bus.nc, "chaos", "revert", {"fault_id": kept["fault_id"]})
        assert again.value.code == "400"
    finally:
        await replay.stop()  # type: ignore[attr-defined]


async def test_the_lab_going_down_reverts_every_fault_first(quiet_stack, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    stack, info = quiet_stack
    log, replay = await follow_run(bus, info.run)
    try:
        fault = (await request(bus.nc, "chaos", "inject",
                               {"kind": "counter_drift", "target": "api:search", "ttl_s": 600}))["fault"]
        await log.wait_for(lambda e: e.type == "chaos.fault_effective", 15, "fault effective")
        said: list[str] = []
        assert await asyncio.to_thread(stack.down, said.append) is True
        reverted = await log.wait_for(lambda e: e.type == "chaos.fault_reverted", 10, "revert on the way down")
        assert reverted.data.fault_id == fault["fault_id"]
        assert reverted.data.reason == "shutdown" and reverted.data.changed is True
        assert "reverted 1 fault(s)" in said
        stopped = {e.data.service for e in log.of_type("svc.stopping")}
        assert "chaos" in stopped and reverted.time < min(
            e.time for e in log.of_type("svc.stopping") if e.data.service == "chaos")
    finally:
        await replay.stop()  # type: ignore[attr-defined]

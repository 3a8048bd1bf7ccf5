"""The chaos service on the real stack: refusals inject nothing; a crash leaves no fault behind."""

from __future__ import annotations

import asyncio

import pytest

from events.bus import Bus
from events.commands import CommandError, request
from oplab.stack import Stack
from oplab.supervisor import Supervisor
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


async def test_a_crashed_chaos_service_reverts_its_faults_at_next_start(quiet_stack, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    stack, info = quiet_stack
    log, replay = await follow_run(bus, info.run)
    sup = Supervisor(info.supervisor_url)
    try:
        injected = await request(bus.nc, "chaos", "inject", {"kind": "node_kill", "target": "node-3", "ttl_s": 600})
        fault_id = injected["fault"]["fault_id"]
        await log.wait_for(lambda e: e.type == "chaos.fault_effective", 15, "fault effective")
        await asyncio.to_thread(sup._proxy().signalProcess, "chaos", "KILL")  # a crash: no cleanup runs
        await asyncio.to_thread(stack.restart, "chaos")
        reverted = await log.wait_for(lambda e: e.type == "chaos.fault_reverted", 30, "revert after restart")
        assert reverted.data.fault_id == fault_id
        assert reverted.data.reason == "restart"
        cluster = await log.wait_for(
            lambda e: e.type == "obs.snapshot" and e.time > reverted.time
            and all(n.status == "up" for n in e.data.nodes), 15, "all nodes up again")
        assert {n.node for n in cluster.data.nodes} == {"node-1", "node-2", "node-3"}
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

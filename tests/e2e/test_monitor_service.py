"""The monitor as a real service: a restart keeps its judgement; unclaimed tickets self-heal."""

from __future__ import annotations

import asyncio

import pytest

from events.bus import Bus
from events.commands import request
from oplab.stack import Stack
from oplab.supervisor import Supervisor
from tests.e2e.conftest import follow_run

pytestmark = pytest.mark.e2e


async def test_a_restarted_monitor_keeps_the_episode_and_self_heals_the_unclaimed_ticket(
    stack: Stack, bus: Bus
) -> None:
    info = await asyncio.to_thread(stack.up, fault="node_kill", mode="interactive")
    log, replay = await follow_run(bus, info.run)
    try:
        await asyncio.to_thread(Supervisor(info.supervisor_url).stop, "agent")  # nobody will claim
        await log.wait_for(lambda e: e.type == "inv.baseline", 30, "the monitor's baseline")  # as the director does
        injected = await request(bus.nc, "chaos", "inject", {"kind": "node_kill", "target": "node-2", "ttl_s": 120})
        opened = await log.wait_for(lambda e: e.type == "ticket.opened", 20, "ticket opened")
        assert (opened.data.invariant, opened.data.entity) == ("node_down", "node-2")

        await asyncio.to_thread(stack.restart, "monitor")
        restarted = await log.wait_for(
            lambda e: e.type == "svc.started" and e.data.service == "monitor" and e.time > opened.time, 30,
            "restarted monitor")
        # a few ticks of the new monitor while the node is still down: no second ticket, no new episode
        await log.wait_for(lambda e: e.type == "obs.snapshot" and e.time > restarted.time
                           and any(n.node == "node-2" and n.status == "down" for n in e.data.nodes), 10,
                           "new monitor sees node-2 down")

        await request(bus.nc, "chaos", "revert", {"fault_id": injected["fault"]["fault_id"]})
        resolved = await log.wait_for(lambda e: e.type == "ticket.resolved", 20, "self-healed resolution")
    finally:
        await replay.stop()  # type: ignore[attr-defined]
    assert resolved.data.ticket_id == opened.data.ticket_id
    assert resolved.data.by == "self-healed"
    assert len(log.of_type("ticket.opened")) == 1
    assert len([e for e in log.of_type("inv.violated") if e.data.entity == "node-2"]) == 1
    assert not log.of_type("ticket.claimed")

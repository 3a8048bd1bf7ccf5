"""A SIGKILLed service shows as gone beside its successor, on the real stack, as the live console sees it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from console.live import LiveFeed
from events.bus import Bus
from oplab.stack import Stack
from oplab.supervisor import Supervisor
from projections.lab_view import LabView

pytestmark = pytest.mark.e2e

HEARTBEAT_S = 1.0
"""The services' heartbeat interval here (OPLAB_HEARTBEAT_S), recorded in their events: gone is a
few missed beats of it, so the test waits seconds, not the default's quarter of a minute."""


def projectors(view: LabView) -> dict[int | None, str]:
    """Each projector instance's pid and status, as the live console would draw it now."""
    now = datetime.now(UTC)  # the live console's clock
    return {r.pid: view.cluster.status(r, now) for r in view.cluster.service_rows() if r.service == "projector"}


async def test_a_killed_projector_shows_gone_and_its_restarted_successor_alive(
        stack: Stack, bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_HEARTBEAT_S", str(HEARTBEAT_S))  # every service of the stack inherits it
    info = await asyncio.to_thread(stack.up, fault="node_kill", mode="interactive")
    feed = LiveFeed(bus, info.run)
    await feed.start(follow=True)
    try:
        await feed.wait_until(lambda v: "alive" in projectors(v).values(), 30)
        [(first, _)] = [(pid, s) for pid, s in projectors(feed.view).items() if s == "alive"]
        [row] = [r for r in feed.view.cluster.service_rows() if r.pid == first]
        assert row.heartbeat_s == HEARTBEAT_S  # carried in its own events

        await asyncio.to_thread(Supervisor(info.supervisor_url).signal, "projector", "KILL")
        # heartbeats of the other services keep arriving every second: each re-evaluates the view
        await feed.wait_until(lambda v: projectors(v).get(first) == "gone"
                              and any(s == "alive" for pid, s in projectors(v).items() if pid != first), 30)
    finally:
        await feed.stop()
    statuses = projectors(feed.view)
    assert statuses[first] == "gone"
    assert [s for pid, s in statuses.items() if pid != first] == ["alive"]
    [old] = [r for r in feed.view.cluster.service_rows() if r.pid == first]
    assert not old.stopping  # SIGKILL: it never said it stopped; its silence told

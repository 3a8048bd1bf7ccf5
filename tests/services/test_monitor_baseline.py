"""The monitor judges nothing before it has seen the subject whole: a starting subject is no incident."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from events import NodeView, ObsSnapshot, WorkloadStats
from events.bus import Bus
from events.settings import BusSettings
from oplab.run_log import RunLog
from services.monitor.bootstrap import build as build_monitor
from services.monitor.service import MonitorService
from services.runtime import ServiceSettings
from subjects.contract import Invariant, Observer, Violation
from tests.services.in_process import InProcess

NODES = ("node-1", "node-2", "node-3")


class NodeNotUp(Invariant):
    name = "node_not_up"
    description = "a node that is not up, at once (no grace: the baseline alone keeps start-up quiet)"
    grace_s = 0.0

    def evaluate(self, snapshots: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]) -> list[Violation]:
        if not snapshots or not snapshots[-1].ok:
            return []
        return [Violation(self.name, n.node, f"{n.node} is {n.status}") for n in snapshots[-1].nodes
                if n.status != "up"]


class Scripted(Observer):
    """A subject whose nodes the test sets: all down while 'starting', then as told."""

    def __init__(self) -> None:
        self.down: set[str] = set(NODES)
        self.observed = 0

    async def observe(self) -> ObsSnapshot:
        self.observed += 1
        return ObsSnapshot(subject="scripted", ok=True, nodes=[
            NodeView(node=n, status="down" if n in self.down else "up") for n in NODES])

    def invariants(self) -> list[Invariant]:
        return [NodeNotUp()]


Start = Callable[[], Awaitable[MonitorService]]


@pytest.fixture
async def monitor(bus_settings: BusSettings, run_id: str, monkeypatch: pytest.MonkeyPatch
                  ) -> AsyncIterator[tuple[Scripted, Start]]:
    monkeypatch.setenv("OPLAB_MONITOR_INTERVAL_S", "0.05")
    observer = Scripted()
    running: list[InProcess[MonitorService]] = []

    async def start() -> MonitorService:
        instance = f"m{len(running)}"
        bus = await Bus.connect(bus_settings, source=f"monitor/{instance}")
        running.append(InProcess(build_monitor(bus, ServiceSettings(run=run_id, instance=instance), observer=observer)))
        return await running[-1].ready()

    yield observer, start
    for process in running:
        await process.stop()


async def test_no_ticket_while_the_subject_starts_then_a_fault_is_ticketed(
        monitor: tuple[Scripted, Start], run_log: RunLog) -> None:
    observer, start = monitor
    first = await start()
    await run_log.wait_for(lambda e: e.type == "obs.snapshot" and all(n.status == "down" for n in e.data.nodes),
                           10, "a snapshot of the subject still starting")
    await run_log.wait_for(lambda e: len(run_log.of_type("obs.snapshot")) >= 5, 10, "several of them")
    observer.down.clear()  # the nodes are listening now
    baseline = await run_log.wait_for(lambda e: e.type == "inv.baseline", 10, "the baseline")
    assert baseline.data.healthy is True and baseline.data.detail == "every node and component up"
    assert not run_log.of_type("inv.violated") and not run_log.of_type("ticket.opened")

    observer.down = {"node-2"}  # a fault, after the baseline
    opened = await run_log.wait_for(lambda e: e.type == "ticket.opened", 10, "the fault's ticket")
    assert opened.data.entity == "node-2" and opened.time > baseline.time

    await first.stop()  # a restarted monitor does not wait for a baseline again
    observer.down = {"node-2", "node-3"}
    await start()
    second = await run_log.wait_for(lambda e: e.type == "ticket.opened" and e.data.entity == "node-3", 10,
                                    "the next fault, judged at once")
    assert second.data.invariant == "node_not_up"
    assert len(run_log.of_type("inv.baseline")) == 1



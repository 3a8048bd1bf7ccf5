"""The monitor judges a workload interval when it arrives, not at its next tick: a violation seen in the
clients' stats is recorded (caused by those stats) and ticketed at once, and clears the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from events import ObsSnapshot, OperationStats, WorkloadStats, new_event
from events.bus import Bus
from events.envelope import utcnow
from events.settings import BusSettings
from oplab.run_log import RunLog
from services.monitor.bootstrap import build as build_monitor
from services.runtime import ServiceSettings
from subjects.contract import Invariant, Observer, Violation
from tests.services.in_process import serving

TICK_S = 30.0
"""The monitor's cadence in this test: after the first tick (the baseline) none comes while it runs."""


class Failing(Invariant):
    name = "checks_failing"
    description = "the newest interval's checks succeed"
    grace_s = 0.0

    def evaluate(self, snapshots: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]) -> list[Violation]:
        if not workload or not workload[-1].operations or not workload[-1].operations[0].errors:
            return []
        return [Violation(self.name, "checks", f"{workload[-1].operations[0].errors} checks failed")]


class Whole(Observer):
    """A subject that always looks whole: only its workload can be wrong."""

    def __init__(self) -> None:
        self.observed = 0

    async def observe(self) -> ObsSnapshot:
        self.observed += 1
        return ObsSnapshot(subject="scripted", ok=True)

    def invariants(self) -> list[Invariant]:
        return [Failing()]


@pytest.fixture
async def monitor(bus_settings: BusSettings, run_id: str, monkeypatch: pytest.MonkeyPatch
                  ) -> AsyncIterator[Whole]:
    monkeypatch.setenv("OPLAB_MONITOR_INTERVAL_S", str(TICK_S))
    observer = Whole()
    bus = await Bus.connect(bus_settings, source="monitor/s")
    async with serving(build_monitor(bus, ServiceSettings(run=run_id, instance="s"), observer=observer)) as running:
        await running.ready()
        yield observer


def interval(errors: int) -> WorkloadStats:
    return WorkloadStats(interval_s=0.25, ended_at=utcnow(),
                         operations=[OperationStats(name="check", sent=40, ok=40 - errors, errors=errors)])


async def test_a_workload_violation_is_judged_and_ticketed_when_its_stats_arrive(
        monitor: Whole, bus: Bus, run_log: RunLog, run_id: str) -> None:
    observer = monitor
    await run_log.wait_for(lambda e: e.type == "inv.baseline", 10, "the baseline, on the first tick")
    ticks = observer.observed
    stats = new_event(interval(errors=30), run=run_id, source="loadgen/t")
    await bus.publish(stats)
    violated = await run_log.wait_for(lambda e: e.type == "inv.violated", 5, "the violation")
    assert violated.causation == stats.id  # the stats that showed it, not a snapshot
    opened = await run_log.wait_for(lambda e: e.type == "ticket.opened", 5, "its ticket")
    assert opened.causation == violated.id and opened.data.invariant == "checks_failing"

    healthy = new_event(interval(errors=0), run=run_id, source="loadgen/t")
    await bus.publish(healthy)
    cleared = await run_log.wait_for(lambda e: e.type == "inv.cleared", 5, "the clearing")
    assert cleared.causation == healthy.id
    resolved = await run_log.wait_for(lambda e: e.type == "ticket.resolved", 5, "self-healed, unclaimed")
    assert resolved.data.by == "self-healed"
    assert observer.observed == ticks, "all of it between two ticks"
    assert (cleared.time - violated.time).total_seconds() < TICK_S


async def test_stats_before_the_baseline_are_history_not_judged(
        bus_settings: BusSettings, bus: Bus, run_log: RunLog, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_MONITOR_INTERVAL_S", str(TICK_S))
    # stats from before the monitor started: restored as history, judged only from the first tick on
    await bus.publish(new_event(interval(errors=30), run=run_id, source="loadgen/t"))
    monitor_bus = await Bus.connect(bus_settings, source="monitor/s")
    async with serving(build_monitor(monitor_bus, ServiceSettings(run=run_id, instance="s"), observer=Whole())):
        baseline = await run_log.wait_for(lambda e: e.type == "inv.baseline", 10, "the baseline")
        # anything judged while restoring would be in the log before the baseline
        assert not [e for e in run_log.of_type("inv.violated") if run_log.seq_of(e) < run_log.seq_of(baseline)]

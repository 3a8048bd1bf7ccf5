"""The loadgen service records the workload's stats at the workload's own interval unless
``OPLAB_LOADGEN_INTERVAL_S`` says otherwise."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from events import WorkloadStats
from events.bus import Bus
from events.envelope import utcnow
from events.settings import BusSettings
from oplab.run_log import RunLog
from services.loadgen.bootstrap import build as build_loadgen
from services.loadgen.service import LoadgenSettings
from services.runtime import ServiceSettings
from subjects.contract import StatsSink, Workload
from tests.services.in_process import serving

OWN_INTERVAL_S = 0.05


class Ticking(Workload):
    """A workload that reports empty intervals, at its own default interval unless told one."""

    def __init__(self) -> None:
        self.asked: list[float | None] = []

    async def run(self, stop: asyncio.Event, on_stats: StatsSink, interval_s: float | None = None) -> None:
        self.asked.append(interval_s)
        every = OWN_INTERVAL_S if interval_s is None else interval_s
        while not stop.is_set():
            await on_stats(WorkloadStats(interval_s=every, ended_at=utcnow()))
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                continue


async def recorded(bus_settings: BusSettings, run_log: RunLog, run_id: str) -> tuple[Ticking, list[float]]:
    """Run the service until it has recorded three intervals; what the workload was asked, and the intervals."""
    workload = Ticking()
    service_bus = await Bus.connect(bus_settings, source="loadgen/t")
    async with serving(build_loadgen(service_bus, ServiceSettings(run=run_id, instance="t"), workload=workload)):
        await run_log.wait_for(lambda e: len(run_log.of_type("workload.stats")) >= 3, 10, "three intervals")
    return workload, [e.data.interval_s for e in run_log.of_type("workload.stats")]


async def test_stats_come_at_the_workloads_own_interval_by_default(
        bus_settings: BusSettings, run_log: RunLog, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPLAB_LOADGEN_INTERVAL_S", raising=False)
    workload, intervals = await recorded(bus_settings, run_log, run_id)
    assert workload.asked == [None]
    assert intervals[:3] == [OWN_INTERVAL_S] * 3


async def test_the_interval_setting_overrides_the_workloads_own(
        bus_settings: BusSettings, run_log: RunLog, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_LOADGEN_INTERVAL_S", "0.02")
    workload, intervals = await recorded(bus_settings, run_log, run_id)
    assert workload.asked == [0.02]
    assert intervals[:3] == [0.02] * 3


@pytest.mark.parametrize("bad", ["0", "-1", "soon"])
def test_a_bad_interval_setting_is_refused(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_LOADGEN_INTERVAL_S", bad)
    with pytest.raises(ValidationError, match="interval_s"):
        LoadgenSettings()

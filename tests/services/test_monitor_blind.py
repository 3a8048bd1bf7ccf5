"""The monitor never goes silent: an observer that raises (against its contract) reads as blindness."""

from __future__ import annotations

import pytest

from events import ObsSnapshot
from events.bus import Bus
from events.settings import BusSettings
from oplab.run_log import RunLog
from services.monitor.bootstrap import build as build_monitor
from services.runtime import ServiceSettings
from subjects.contract import Invariant, Observer
from tests.services.in_process import serving


class Raising(Observer):
    async def observe(self) -> ObsSnapshot:
        raise RuntimeError("a plug-in bug")

    def invariants(self) -> list[Invariant]:
        return []  # it even forgot observer_blind


async def test_an_observer_that_raises_is_recorded_as_blind_and_ticketed(
        run_log: RunLog, bus_settings: BusSettings, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_MONITOR_BASELINE_TIMEOUT_S", "1")  # it never looks whole: judged anyway
    monitor_bus = await Bus.connect(bus_settings, source="monitor/t")
    async with serving(build_monitor(monitor_bus, ServiceSettings(run=run_id, instance="t"), observer=Raising())):
        snap = await run_log.wait_for(lambda e: e.type == "obs.snapshot", 10, "a snapshot")
        assert snap.data.ok is False and "the observer raised RuntimeError: a plug-in bug" in snap.data.error
        baseline = await run_log.wait_for(lambda e: e.type == "inv.baseline", 10, "judging begins")
        assert baseline.data.healthy is False and baseline.data.waited_s >= 1
        assert "never looked whole within 1s" in baseline.data.detail
        opened = await run_log.wait_for(lambda e: e.type == "ticket.opened", 10, "a ticket")
        assert opened.time > baseline.time
        assert (opened.data.invariant, opened.data.entity) == ("observer_blind", "observer")

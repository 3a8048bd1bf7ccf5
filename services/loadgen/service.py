"""The loadgen service: runs the subject's workload and records what clients saw.

The traffic itself is the subject's (its workload role); this service only
schedules it and puts each interval's stats on the bus. Stats it cannot
publish (NATS briefly away) are logged and dropped: they describe the past.
"""

from __future__ import annotations

import logging

from pydantic_settings import BaseSettings, SettingsConfigDict

from events import WorkloadStats
from services.runtime import ServiceProcess
from services.runtime.subject import role_of
from subjects.contract import Workload
from subjects.registry import SubjectSettings

log = logging.getLogger(__name__)


class LoadgenSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_LOADGEN_", extra="ignore")
    interval_s: float = 1.0


class LoadgenService(ServiceProcess):
    name = "loadgen"

    def __init__(self, bus, settings, workload: Workload | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(bus, settings)
        self.config = LoadgenSettings()
        self.subject = SubjectSettings().subject
        self.workload = workload or role_of(self.subject, lambda s: s.workload())

    async def main(self) -> None:
        await self.ensure_run_subject(self.subject)
        self.ready.set()
        try:
            await self.workload.run(self.stopping, self._record, self.config.interval_s)
        finally:
            await self.workload.close()

    async def _record(self, stats: WorkloadStats) -> None:
        try:
            await self.emit(stats)
        except Exception as exc:
            log.warning("workload stats not recorded: %s", exc)

"""The loadgen service: runs the subject's workload and records what clients saw.

The traffic itself is the subject's (its workload role); this service only
schedules it and puts each interval's stats on the bus. Stats it cannot
publish (NATS briefly away) are logged and dropped: they describe the past.

How often stats come is the workload's own choice (the rate limiter reports
every 0.25 s, so its workload invariants can answer within a second; a
subject that says nothing reports every second) unless
``OPLAB_LOADGEN_INTERVAL_S`` sets it for every subject.
"""

from __future__ import annotations

import logging

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import WorkloadStats
from events.bus import Bus
from services.runtime import ServiceSettings, SubjectService
from subjects.contract import Workload

log = logging.getLogger(__name__)


class LoadgenSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_LOADGEN_", extra="ignore")
    interval_s: float | None = Field(default=None, gt=0, le=60)
    """Seconds per stats interval; unset: the workload's own default (see the module doc)."""


class LoadgenService(SubjectService[LoadgenSettings]):
    name = "loadgen"

    def __init__(self, bus: Bus, settings: ServiceSettings, *, config: LoadgenSettings, subject: str,
                 workload: Workload) -> None:
        """Built by :func:`services.loadgen.bootstrap.build` (in production and in tests alike)."""
        super().__init__(bus, settings, config=config, subject=subject)
        self.workload = workload

    async def main(self) -> None:
        await self.ensure_run_subject(self.subject)
        self.ready.set()
        try:
            if self.config.interval_s is None:
                await self.workload.run(self.stopping, self._record)
            else:
                await self.workload.run(self.stopping, self._record, self.config.interval_s)
        finally:
            await self.workload.close()

    async def _record(self, stats: WorkloadStats) -> None:
        try:
            await self.emit(stats)
        except Exception as exc:
            log.warning("workload stats not recorded", extra={"error": str(exc)})

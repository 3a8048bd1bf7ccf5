"""Building loadgen: its settings and the run's subject workload, from the environment unless given."""

from __future__ import annotations

from events.bus import Bus
from services.loadgen.service import LoadgenService, LoadgenSettings
from services.runtime import ServiceSettings
from services.runtime.subject import role_of
from subjects.contract import Workload
from subjects.registry import SubjectSettings


def build(bus: Bus, settings: ServiceSettings, *, workload: Workload | None = None,
          config: LoadgenSettings | None = None) -> LoadgenService:
    """Loadgen for ``settings.run``; ``workload`` and ``config`` override what the environment says."""
    subject = SubjectSettings().subject
    return LoadgenService(bus, settings, config=config or LoadgenSettings(), subject=subject,
                          workload=workload or role_of(subject, lambda s: s.workload()))

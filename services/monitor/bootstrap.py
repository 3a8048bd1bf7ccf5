"""Building the monitor: its settings and the run's subject observer, from the environment unless given."""

from __future__ import annotations

from events.bus import Bus
from services.monitor.service import MonitorService, MonitorSettings
from services.runtime import ServiceSettings
from services.runtime.subject import role_of
from subjects.contract import Observer
from subjects.registry import SubjectSettings


def build(bus: Bus, settings: ServiceSettings, *, observer: Observer | None = None,
          config: MonitorSettings | None = None) -> MonitorService:
    """The monitor of ``settings.run``; ``observer`` and ``config`` override what the environment says
    (a test's own observer, say)."""
    subject = SubjectSettings().subject
    return MonitorService(bus, settings, config=config or MonitorSettings(), subject=subject,
                          observer=observer or role_of(subject, lambda s: s.observer()))

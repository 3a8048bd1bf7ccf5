"""Building the director: its settings and the run's subject, from the environment unless given."""

from __future__ import annotations

from events.bus import Bus
from services.director.service import DirectorService, DirectorSettings
from services.runtime import ServiceSettings
from services.runtime.subject import role_of
from subjects.contract import Subject
from subjects.registry import SubjectSettings


def build(bus: Bus, settings: ServiceSettings, *, subject: Subject | None = None,
          config: DirectorSettings | None = None) -> DirectorService:
    """The director of ``settings.run``; ``subject`` and ``config`` override what the environment says."""
    return DirectorService(bus, settings, config=config or DirectorSettings(),
                           subject=subject or role_of(SubjectSettings().subject, lambda s: s))

"""Building the chaos service: its settings and the run's subject fault kit, from the environment
unless given."""

from __future__ import annotations

from events.bus import Bus
from services.chaos.service import ChaosService
from services.chaos.settings import ChaosSettings
from services.runtime import ServiceSettings
from services.runtime.subject import role_of
from subjects.contract.fault_kit import FaultKit
from subjects.registry import SubjectSettings


def build(bus: Bus, settings: ServiceSettings, *, kit: FaultKit | None = None,
          config: ChaosSettings | None = None) -> ChaosService:
    """The chaos service of ``settings.run``; ``kit`` and ``config`` override what the environment says."""
    subject = SubjectSettings().subject
    return ChaosService(bus, settings, config=config or ChaosSettings(), subject=subject,
                        kit=kit or role_of(subject, lambda s: s.fault_kit()))

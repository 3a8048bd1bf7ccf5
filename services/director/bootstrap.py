"""Building the director: its settings, the run's subject and the scenario it plays, from the environment
unless given."""

from __future__ import annotations

from events.bus import Bus
from services.director.scenario import Scenario, ScenarioError, load_scenario
from services.director.service import DirectorService, DirectorSettings
from services.runtime import ServiceSettings
from services.runtime.subject import role_of
from subjects.contract import Subject
from subjects.registry import SubjectSettings


def build(bus: Bus, settings: ServiceSettings, *, subject: Subject | None = None,
          config: DirectorSettings | None = None, scenario: Scenario | None = None) -> DirectorService:
    """The director of ``settings.run``; ``subject``, ``config`` and ``scenario`` override what the
    environment says (default scenario: the subject's one ``config.scenario`` names). Exits with the
    reason when that scenario cannot be loaded or does not play the fault asked for (``config.fault``;
    default: the scenario's first)."""
    config = config or DirectorSettings()
    subject = subject or role_of(SubjectSettings().subject, lambda s: s)
    if scenario is None:
        try:
            scenario = load_scenario(config.scenario, subject)
        except ScenarioError as exc:
            raise SystemExit(f"director: {exc}") from exc
    fault = config.fault or scenario.default_fault
    if fault not in scenario.faults:
        raise SystemExit(f"director: fault {fault!r} is not in scenario {scenario.name} "
                         f"(choose from {', '.join(scenario.faults)})")
    return DirectorService(bus, settings, config=config, subject=subject, scenario=scenario, fault=fault)

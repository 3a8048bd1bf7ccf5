"""Building an agent: its settings, the run's subject toolbox and its policy, from the environment
unless given."""

from __future__ import annotations

from collections import deque

from events import ObsSnapshot
from events.bus import Bus
from services.agent.policies import Policy, make_policy
from services.agent.service import AgentService
from services.agent.settings import AgentSettings
from services.runtime import ServiceSettings
from services.runtime.subject import role_of
from subjects.contract import Toolbox
from subjects.registry import SubjectSettings


def build(bus: Bus, settings: ServiceSettings, *, config: AgentSettings | None = None,
          toolbox: Toolbox | None = None, policy: Policy | None = None) -> AgentService:
    """An agent of ``settings.run``; ``config``, ``toolbox`` and ``policy`` override what the
    environment says (default policy: ``config.policy``'s, reading the agent's latest observations)."""
    config = config or AgentSettings()
    subject = SubjectSettings().subject
    snapshots: deque[ObsSnapshot] = deque(maxlen=2)
    return AgentService(bus, settings, config=config, subject=subject,
                        toolbox=toolbox or role_of(subject, lambda s: s.toolbox()),
                        policy=policy or make_policy(config.policy, config, snapshots), snapshots=snapshots)

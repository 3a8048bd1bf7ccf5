"""Operator policies: how a session decides what to do.

- ``rules`` (offline): the subject's playbook for the ticket's invariant;
- ``claude``: a tool-use conversation with Claude through the Messages API;
- ``replay``: a recorded Claude session served back from the log, no network.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from services.agent.policies.base import Policy, SessionOutcome
from services.agent.policies.rules import RulesPolicy

if TYPE_CHECKING:
    from events import ObsSnapshot
    from services.agent.settings import AgentSettings

__all__ = ["Policy", "RulesPolicy", "SessionOutcome", "make_policy"]

POLICIES = ("rules", "claude", "replay")


def make_policy(name: str, settings: AgentSettings | None = None,
                snapshots: deque[ObsSnapshot] | None = None) -> Policy:
    if name == "rules":
        return RulesPolicy()
    if name in ("claude", "replay"):
        from services.agent.settings import AgentSettings

        settings = settings or AgentSettings()
        if name == "claude":
            from services.agent.policies.claude import ClaudePolicy

            return ClaudePolicy(settings, snapshots=snapshots)
        from services.agent.policies.replay import ReplayPolicy

        return ReplayPolicy(settings, snapshots=snapshots)
    raise ValueError(f"unknown agent policy {name!r} (available: {', '.join(POLICIES)})")

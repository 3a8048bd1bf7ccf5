"""Operator policies: how a session decides what to do. ``rules`` is the offline default."""

from services.agent.policies.base import Policy, SessionOutcome
from services.agent.policies.rules import RulesPolicy

__all__ = ["Policy", "RulesPolicy", "SessionOutcome", "make_policy"]


def make_policy(name: str) -> Policy:
    if name == "rules":
        return RulesPolicy()
    raise ValueError(f"unknown agent policy {name!r} (available: rules)")

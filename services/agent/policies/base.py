"""The policy interface. A policy works a claimed ticket through a :class:`Session`;
the session (not the policy) verifies recovery and closes the ticket."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.agent.session import Session


@dataclass(frozen=True)
class SessionOutcome:
    """What the policy concluded: remediated (verify it) or escalate with a reason."""

    remediated: bool
    reason: str = ""


class Policy(abc.ABC):
    name: str

    @abc.abstractmethod
    async def work(self, session: Session) -> SessionOutcome: ...

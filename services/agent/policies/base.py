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
    """What the policy concluded: remediated (verify it) or escalate with a reason.

    ``reason`` is the escalation reason, or for a remediated outcome the policy's
    own summary (the model's final answer), kept as the resolution note.
    """

    remediated: bool
    reason: str = ""


class Policy(abc.ABC):
    name: str
    model: str | None = None

    @abc.abstractmethod
    async def work(self, session: Session) -> SessionOutcome: ...

    async def verification_failed(self, session: Session, failure: str) -> SessionOutcome | None:
        """The lab could not verify recovery after this policy's outcome (``failure`` says how).
        Return a new outcome to keep working on the ticket (it is verified again), or None to
        escalate. Default: None."""
        return None

    async def finished(self, session: Session, outcome: str, reason: str) -> None:
        """Called once the session's outcome is final (resolved, self-healed, escalated), before
        ``agent.session_finished`` is recorded. Default: nothing."""

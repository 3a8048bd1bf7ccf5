"""Decisions on pending actions, folded from the ticket events the agent follows.

In manual approval mode a session records ``ticket.action_requested`` with
``awaiting_approval`` and waits here for the human's ``ticket.action_approved``
or ``ticket.action_rejected``. The session bounds the wait (``approval_timeout_s``,
after which the agent rejects the request itself).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from events import Payload, TicketActionApproved, TicketActionRejected


@dataclass(frozen=True)
class Decision:
    approved: bool
    by: str
    reason: str = ""


@dataclass
class Approvals:
    decisions: dict[str, Decision] = field(default_factory=dict)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def apply(self, data: Payload) -> None:
        if isinstance(data, TicketActionApproved):
            self.decisions[data.action_id] = Decision(True, data.by)
        elif isinstance(data, TicketActionRejected):
            self.decisions[data.action_id] = Decision(False, data.by, data.reason)
        else:
            return
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, action_id: str) -> Decision:
        async with self._changed:
            await self._changed.wait_for(lambda: action_id in self.decisions)
        return self.decisions[action_id]

"""One agent session on one claimed ticket.

The session is the policy's only way to act: every tool call is validated
against the tool's argument model, executed, and recorded (``agent.tool_call``
/ ``agent.tool_result``; mutating calls also as ``ticket.action_executed``).
Ticket changes go through the aggregate with optimistic concurrency. The
session, not the policy, decides success: ``verify`` waits for the monitor's
``inv.cleared`` for the ticket's violation, later in the log than the last
remedy.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from events import AgentThought, AgentToolCall, AgentToolResult
from events.bus import Bus
from projections.tickets import TicketState, TicketStore
from services.agent.violations import ViolationTracker
from subjects.base import Adapter, AdapterError

log = logging.getLogger(__name__)

_RESULT_LIMIT = 4000


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    value: Any = None
    error: str | None = None


class Session:
    def __init__(self, *, bus: Bus, run: str, agent: str, adapter: Adapter, store: TicketStore,
                 ticket: TicketState, evidence: dict[str, Any], violations: ViolationTracker,
                 max_steps: int) -> None:
        self.bus = bus
        self.run = run
        self.agent = agent
        self.adapter = adapter
        self.store = store
        self.ticket = ticket
        self.evidence = evidence
        self.violations = violations
        self.max_steps = max_steps
        self.steps = 0
        self.last_action_seq = 0

    @property
    def ticket_id(self) -> str:
        return self.ticket.ticket_id

    async def _emit(self, data: Any) -> int:
        return await self.bus.publish(self.bus.event(data, run=self.run, correlation=self.ticket_id))

    async def think(self, text: str) -> None:
        await self._emit(AgentThought(ticket_id=self.ticket_id, text=text))

    async def call_tool(self, name: str, args: dict[str, Any]) -> ToolResult:
        """Validate, run and record one tool call. Never raises for tool-level problems."""
        self.steps += 1
        call_id = f"c{self.steps}-{secrets.token_hex(3)}"
        tool = self.adapter.tool(name)
        mutating = bool(tool and tool.mutating)
        call_seq = await self._emit(AgentToolCall(ticket_id=self.ticket_id, call_id=call_id, tool=name,
                                                  args=args, mutating=mutating))
        if self.steps > self.max_steps:
            result = ToolResult(False, error=f"step budget of {self.max_steps} exhausted")
        elif tool is None:
            result = ToolResult(False, error=f"unknown tool {name!r}")
        else:
            if mutating:  # intent is in the log before the act
                await self.store.update(self.ticket_id,
                                        lambda t: t.request_action(self.agent, call_id, name, args))
            result = await self._execute(tool, args)
        await self._emit(AgentToolResult(ticket_id=self.ticket_id, call_id=call_id, tool=name,
                                               ok=result.ok, result=abridge(result.value), error=result.error))
        if mutating and tool is not None and self.steps <= self.max_steps:
            outcome = abridge(result.value) if result.ok else result.error
            await self.store.update(self.ticket_id, lambda t: t.record_action(
                self.agent, call_id, name, args, result.ok, outcome))
            # a remedy that waits for its own effect (a restarted node answering) may be
            # outlived by the monitor's clear: the clear must follow the call, not the result
            self.last_action_seq = call_seq
        return result

    async def _execute(self, tool: Any, args: dict[str, Any]) -> ToolResult:
        try:
            return ToolResult(True, await tool.call(args))
        except ValidationError as exc:
            return ToolResult(False, error=f"invalid arguments: {exc.errors()[0].get('msg')}")
        except AdapterError as exc:
            return ToolResult(False, error=str(exc))
        except Exception as exc:  # a tool bug must not kill the session: record it
            log.exception("tool %s crashed", tool.name)
            return ToolResult(False, error=f"tool crashed: {exc!r}")

    async def diagnose(self, hypothesis: str, evidence: dict[str, Any]) -> None:
        await self.store.update(self.ticket_id, lambda t: t.diagnose(self.agent, hypothesis, evidence))

    async def verify(self, timeout: float) -> bool:
        """True if the ticket's violation cleared after the last remedy, within ``timeout``."""
        key = (self.ticket.invariant, self.ticket.entity)
        return await self.violations.wait_cleared(key, self.last_action_seq, timeout)


def abridge(value: Any) -> Any:
    """``value`` unchanged if short, else its text cut to a budget with a note saying so."""
    text = repr(value) if not isinstance(value, str) else value
    if len(text) <= _RESULT_LIMIT:
        return value
    return text[:_RESULT_LIMIT] + f"... [{len(text) - _RESULT_LIMIT} characters cut]"

"""One agent session on one claimed ticket.

The session is the policy's only way to act: every tool call is checked
(known tool, arguments valid against the tool's pydantic model, step budget)
before anything runs, then executed and recorded (``agent.tool_call`` /
``agent.tool_result``; mutating calls also as ``ticket.action_requested`` before
and ``ticket.action_executed`` after). Unknown tools and invalid arguments are
recorded and answered as errors, never executed.

Approval: in ``manual`` mode a mutating call is recorded as
``ticket.action_requested`` with ``awaiting_approval`` and runs only once a
human approved it; a rejection comes back as a failed result carrying the
human's reason. Read-only tools never wait.

Everything recorded goes through the session's :class:`~services.agent.redact.Redactor`,
and results are cut to a budget (with a note saying so).

Ticket changes go through the aggregate with optimistic concurrency. The
session, not the policy, decides success: ``verify`` waits for the monitor's
``inv.cleared`` for the ticket's violation, later in the log than the last
remedy.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from events import AgentThought, AgentToolCall, AgentToolResult
from events.bus import Bus
from projections.tickets import TicketState, TicketStore
from services.agent.approvals import Approvals
from services.agent.redact import Redactor
from services.agent.violations import ViolationTracker
from subjects.base import Adapter, AdapterError, Tool

log = logging.getLogger(__name__)

_RESULT_LIMIT = 4000


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    value: Any = None
    error: str | None = None
    executed: bool = False  # the tool actually ran (False: refused before running)
    rejected: bool = False  # a human rejected it (manual approval)


class Session:
    def __init__(self, *, bus: Bus, run: str, agent: str, adapter: Adapter, store: TicketStore,
                 ticket: TicketState, evidence: dict[str, Any], violations: ViolationTracker,
                 max_steps: int, approval: str = "auto", approvals: Approvals | None = None,
                 redactor: Redactor | None = None, result_limit: int = _RESULT_LIMIT) -> None:
        self.bus = bus
        self.run = run
        self.agent = agent
        self.adapter = adapter
        self.store = store
        self.ticket = ticket
        self.evidence = evidence
        self.violations = violations
        self.max_steps = max_steps
        self.approval = approval
        self.approvals = approvals or Approvals()
        self.redact = redactor or Redactor()
        self.result_limit = result_limit
        self.steps = 0
        self.last_action_seq = 0
        self.remedies = 0  # mutating calls that ran and succeeded
        self.failures: Counter[str] = Counter()  # failing calls by (tool, args)
        # what the policy reports back when the session ends (tokens, cost, turns, ...)
        self.stats: dict[str, Any] = {}

    @property
    def ticket_id(self) -> str:
        return self.ticket.ticket_id

    async def _emit(self, data: Any) -> int:
        return await self.bus.publish(self.bus.event(data, run=self.run, correlation=self.ticket_id))

    async def record(self, data: Any) -> int:
        """Record one ``agent.*`` payload for this ticket (the caller redacts it)."""
        return await self._emit(data)

    async def think(self, text: str) -> None:
        await self._emit(AgentThought(ticket_id=self.ticket_id, text=self.redact.text(text)))

    @staticmethod
    def call_key(name: str, args: dict[str, Any]) -> str:
        return f"{name}({json.dumps(args, sort_keys=True, default=str)})"

    def tool_names(self) -> list[str]:
        return [t.name for t in self.adapter.tools()]

    async def call_tool(self, name: str, args: dict[str, Any], *, tool_use_id: str | None = None) -> ToolResult:
        """Check, run and record one tool call. Never raises for tool-level problems."""
        self.steps += 1
        call_id = f"c{self.steps}-{secrets.token_hex(4)}"
        tool = self.adapter.tool(name)
        mutating = bool(tool and tool.mutating)
        safe_args = self.redact.value(args)
        call_seq = await self._emit(AgentToolCall(ticket_id=self.ticket_id, call_id=call_id, tool=name,
                                                  args=safe_args, mutating=mutating, tool_use_id=tool_use_id))
        parsed: Any = None
        if self.steps > self.max_steps:
            result = ToolResult(False, error=f"step budget of {self.max_steps} tool calls exhausted")
        elif tool is None:
            result = ToolResult(False, error=f"unknown tool {name!r}; available tools: "
                                             f"{', '.join(self.tool_names())}")
        else:
            parsed, error = _validate(tool, args)
            result = ToolResult(False, error=error) if error else await self._run(tool, call_id, safe_args, parsed)
        full = self.redact.value(result.value)
        value = abridge(full, self.result_limit)
        truncated = value is not full
        error = self.redact.text(result.error) if result.error else None
        await self._emit(AgentToolResult(ticket_id=self.ticket_id, call_id=call_id, tool=name, ok=result.ok,
                                         result=value, error=error, tool_use_id=tool_use_id, truncated=truncated))
        if mutating and result.executed:
            outcome = value if result.ok else error
            await self.store.update(self.ticket_id, lambda t: t.record_action(
                self.agent, call_id, name, safe_args, result.ok, outcome))
            if result.ok:
                self.remedies += 1
                if not self.last_action_seq:
                    # the clear must follow the FIRST successful remedy's call: a remedy that
                    # waits for its own effect (a restarted node answering) may be outlived
                    # by the monitor's clear, and a redundant second remedy brings no new one
                    self.last_action_seq = call_seq
        if not result.ok:
            self.failures[self.call_key(name, args)] += 1
        # the policy gets the whole (redacted) value; the log gets it cut to the budget
        return ToolResult(result.ok, full, error, result.executed, result.rejected)

    async def _run(self, tool: Tool, call_id: str, safe_args: dict[str, Any], parsed: Any) -> ToolResult:
        if tool.mutating:  # intent is in the log before the act
            manual = self.approval == "manual"
            await self.store.update(self.ticket_id, lambda t: t.request_action(
                self.agent, call_id, tool.name, safe_args, awaiting_approval=manual))
            if manual:
                await self.think(f"waiting for a human to approve {tool.name} (action {call_id}): "
                                 f"`oplab approve {call_id}` or `oplab reject {call_id} --reason ...`")
                decision = await self.approvals.wait(call_id)
                if not decision.approved:
                    return ToolResult(False, error=f"rejected by {decision.by}: {decision.reason} "
                                                   "(the action was not executed)", rejected=True)
        return await self._execute(tool, parsed)

    async def _execute(self, tool: Tool, parsed: Any) -> ToolResult:
        try:
            return ToolResult(True, await tool.run(parsed), executed=True)
        except AdapterError as exc:
            return ToolResult(False, error=str(exc), executed=True)
        except Exception as exc:  # a tool bug must not kill the session: record it
            log.exception("tool %s crashed", tool.name)
            return ToolResult(False, error=f"tool crashed: {exc!r}", executed=True)

    async def diagnose(self, hypothesis: str, evidence: dict[str, Any]) -> None:
        hypothesis, evidence = self.redact.text(hypothesis), self.redact.value(evidence)
        await self.store.update(self.ticket_id, lambda t: t.diagnose(self.agent, hypothesis, evidence))

    async def verify(self, timeout: float) -> bool:
        """True if the ticket's violation cleared after the first successful remedy and has not
        been violated again since, within ``timeout``."""
        key = (self.ticket.invariant, self.ticket.entity)
        return await self.violations.wait_cleared(key, self.last_action_seq, timeout)


def _validate(tool: Tool, args: Any) -> tuple[Any, str | None]:
    if not isinstance(args, dict):
        return None, f"invalid arguments for {tool.name}: expected a JSON object, got {type(args).__name__}"
    try:
        return tool.args_model.model_validate(args), None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '<root>'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:5])
        return None, f"invalid arguments for {tool.name}: {problems}"


def abridge(value: Any, limit: int = _RESULT_LIMIT) -> Any:
    """``value`` unchanged if short, else its text cut to a budget with a note saying so."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) <= limit:
        return value
    return text[:limit] + f"... [truncated: {len(text) - limit} of {len(text)} characters cut]"

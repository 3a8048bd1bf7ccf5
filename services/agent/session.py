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
human's reason. Read-only tools never wait. While it waits, the session
deadline is paused (people are slower than budgets; the service keeps the
lease alive throughout the session); a request nobody decides on within
``approval_timeout_s`` is rejected by the agent itself.

Once a tool has started acting, its result and the ticket's record of it are
written even if the session is cut short (deadline, SIGTERM): the call runs
shielded, and :meth:`Session.settle` waits for it before the ticket is escalated.

Everything recorded goes through the session's :class:`~services.agent.redact.Redactor`,
and results are cut to a budget (with a note saying so).

Ticket changes go through the aggregate with optimistic concurrency. The
session, not the policy, decides success: ``verify`` waits for the monitor's
``inv.cleared`` for the ticket's violation, later in the log than the first
successful remedy (or, if every action that ran failed, than the first of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from events import AgentThought, AgentToolCall, AgentToolResult
from events.bus import Bus
from services.agent.approvals import Approvals, Decision
from services.agent.redact import Redactor
from services.agent.violations import ViolationTracker
from subjects.contract import SubjectError, Tool, Toolbox
from tickets import IllegalTransition, TicketState, TicketStore

log = logging.getLogger(__name__)

_RESULT_LIMIT = 4000
_CANCEL_S = 1.0  # a cancelled tool call unwinds within this
_LATE_DECISION_S = 5.0  # a decision already in the log reaches our fold within this


@dataclass
class _Call:
    """One tool call as the session records it (``args`` as the model sent them, ``safe_args`` redacted)."""

    name: str
    args: dict[str, Any]
    safe_args: dict[str, Any]
    call_id: str
    tool_use_id: str | None
    mutating: bool
    seq: int = 0  # log position of its agent.tool_call
    target: str | None = None  # what a mutating call acts on (the tool's acts_on), for scoring


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    value: Any = None
    error: str | None = None
    executed: bool = False  # the tool actually ran (False: refused before running)
    rejected: bool = False  # a human rejected it (manual approval)


class Session:
    def __init__(self, *, bus: Bus, run: str, agent: str, toolbox: Toolbox, store: TicketStore,
                 ticket: TicketState, evidence: dict[str, Any], violations: ViolationTracker,
                 max_steps: int, approval: str = "auto", approvals: Approvals | None = None,
                 redactor: Redactor | None = None, result_limit: int = _RESULT_LIMIT,
                 approval_timeout_s: float = 600.0, deadline: asyncio.Timeout | None = None,
                 causation: str | None = None) -> None:
        self.bus = bus
        self.run = run
        self.agent = agent
        self.toolbox = toolbox
        self.store = store
        self.ticket = ticket
        self.evidence = evidence
        self.violations = violations
        self.max_steps = max_steps
        self.approval = approval
        self.approvals = approvals or Approvals()
        self.redact = redactor or Redactor()
        self.result_limit = result_limit
        self.approval_timeout_s = approval_timeout_s
        self.deadline = deadline  # the service's session deadline (paused while humans decide)
        self.causation = causation  # the ticket.claimed this session works under: the cause of its agent.* events
        self.in_flight: asyncio.Future[ToolResult] | None = None  # a tool call that has started acting
        self.in_flight_call = ""
        self._settle_by: float | None = None  # loop time until which ``settle`` waits for it
        self._settled: str | None = None  # what ``settle`` found
        self.steps = 0
        self.first_remedy_seq = 0  # log position of the first successful remedy's agent.tool_call
        self.remedies = 0  # mutating calls that ran and succeeded
        self.attempts = 0  # mutating calls that ran, whether they succeeded or not: actions on the ticket
        self.first_attempt_seq = 0  # log position of the first of them's agent.tool_call
        self.failures: Counter[str] = Counter()  # failing calls by (tool, args)
        # what the policy reports back when the session ends (tokens, cost, turns, ...)
        self.stats: dict[str, Any] = {}

    @property
    def ticket_id(self) -> str:
        return self.ticket.ticket_id

    async def _emit(self, data: Any) -> int:
        return await self.bus.publish(self.bus.event(data, run=self.run, correlation=self.ticket_id,
                                                     causation=self.causation))

    async def record(self, data: Any) -> int:
        """Record one ``agent.*`` payload for this ticket (the caller redacts it)."""
        return await self._emit(data)

    async def think(self, text: str) -> None:
        await self._emit(AgentThought(ticket_id=self.ticket_id, text=self.redact.text(text)))

    @staticmethod
    def call_key(name: str, args: dict[str, Any]) -> str:
        return f"{name}({json.dumps(args, sort_keys=True, default=str)})"

    def tool_names(self) -> list[str]:
        return [t.name for t in self.toolbox.tools()]

    async def call_tool(self, name: str, args: dict[str, Any], *, tool_use_id: str | None = None) -> ToolResult:
        """Check, run and record one tool call. Never raises for tool-level problems."""
        self.steps += 1
        tool = self.toolbox.tool(name)
        call = _Call(name=name, args=args, safe_args=self.redact.value(args), call_id=f"c{self.steps}-"
                     f"{secrets.token_hex(4)}", tool_use_id=tool_use_id, mutating=bool(tool and tool.mutating))
        call.seq = await self._emit(AgentToolCall(ticket_id=self.ticket_id, call_id=call.call_id, tool=name,
                                                  args=call.safe_args, mutating=call.mutating,
                                                  tool_use_id=tool_use_id))
        parsed: Any = None
        if self.steps > self.max_steps:
            refusal: ToolResult | None = ToolResult(False, error=f"step budget of {self.max_steps} tool calls "
                                                                 "exhausted")
        elif tool is None:
            refusal = ToolResult(False, error=f"unknown tool {name!r}; available tools: "
                                              f"{', '.join(self.tool_names())}")
        else:
            parsed, error = _validate(tool, args)
            refusal = ToolResult(False, error=error) if error else None
        if refusal is None and tool is not None and tool.mutating:
            refusal = await self._request(tool, call)
        if refusal is not None:
            return await self._finish(call, refusal)
        assert tool is not None  # an unknown tool was refused above
        # From here the tool acts on the system. Its result and the ticket's record of it must
        # land even if the session is cut short (deadline, SIGTERM) mid-call — otherwise the log
        # would show an act with no outcome — so the work runs shielded and ``settle`` can
        # wait for it after a cancellation.
        self.in_flight = asyncio.ensure_future(self._execute_and_finish(tool, parsed, call))
        self.in_flight.add_done_callback(_report_lost_outcome)
        self.in_flight_call = self.call_key(name, call.safe_args)
        return await asyncio.shield(self.in_flight)

    async def settle(self, grace: float) -> str | None:
        """After a cancellation: wait (at most ``grace`` seconds from the first call, however
        often it is called) for a tool call that was running, so its outcome is recorded; a
        call still running then is cancelled. A note on that call for the escalation reason,
        or None if no call was running."""
        task = self.in_flight
        if task is None:
            return self._settled
        loop = asyncio.get_running_loop()
        if self._settle_by is None:
            self._settle_by = loop.time() + grace
        what = self.in_flight_call
        try:
            async with asyncio.timeout_at(self._settle_by):
                result = await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            await asyncio.wait({task}, timeout=_CANCEL_S)  # let it unwind before the toolbox closes
            self._settled = f"{what} was still running {grace:g}s later and was cancelled; its outcome is unknown"
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # we are being cancelled, not the call
            self._settled = f"{what} was cancelled; its outcome is unknown"
        except Exception as exc:
            self._settled = f"{what} failed while finishing: {exc!r}"
        else:
            outcome = "succeeded" if result.ok else f"failed: {abridge(result.error or '', 200)}"
            self._settled = f"{what} was running at that moment; it has since {outcome}"
        return self._settled

    async def _execute_and_finish(self, tool: Tool, parsed: Any, call: _Call) -> ToolResult:
        try:
            return await self._finish(call, await self._execute(tool, parsed))
        finally:
            self.in_flight = None

    async def _finish(self, call: _Call, result: ToolResult) -> ToolResult:
        """Record ``result`` (redacted; cut to the budget in the log) and what it did to the ticket."""
        full = self.redact.value(result.value)
        value = abridge(full, self.result_limit)
        truncated = value is not full
        error = self.redact.text(result.error) if result.error else None
        await self._emit(AgentToolResult(ticket_id=self.ticket_id, call_id=call.call_id, tool=call.name,
                                         ok=result.ok, result=value, error=error, tool_use_id=call.tool_use_id,
                                         truncated=truncated))
        if call.mutating and result.executed:
            outcome = value if result.ok else error
            await self.store.update(self.ticket_id, lambda t: t.record_action(
                self.agent, call.call_id, call.name, call.safe_args, result.ok, outcome, target=call.target))
            self.attempts += 1
            if not self.first_attempt_seq:
                self.first_attempt_seq = call.seq
            if result.ok:
                self.remedies += 1
                if not self.first_remedy_seq:
                    # the clear must follow the FIRST successful remedy's call: a remedy that
                    # waits for its own effect (a restarted node answering) may be outlived
                    # by the monitor's clear, and a redundant second remedy brings no new one
                    self.first_remedy_seq = call.seq
        if not result.ok:
            self.failures[self.call_key(call.name, call.args)] += 1
        # the policy gets the whole (redacted) value; the log gets it cut to the budget
        return ToolResult(result.ok, full, error, result.executed, result.rejected)

    async def _request(self, tool: Tool, call: _Call) -> ToolResult | None:
        """Record the intent before the act; in manual mode wait for a human. A refusal if rejected."""
        manual = self.approval == "manual"
        target = tool.target_of(call.args)
        call.target = self.redact.text(target) if target is not None else None
        await self.store.update(self.ticket_id, lambda t: t.request_action(
            self.agent, call.call_id, tool.name, call.safe_args, awaiting_approval=manual, target=call.target))
        if not manual:
            return None
        await self.think(f"waiting for a human to approve {tool.name} (action {call.call_id}): "
                         f"`oplab approve {call.call_id}` or `oplab reject {call.call_id} --reason ...`")
        decision = await self._await_decision(call.call_id)
        if decision.approved:
            return None
        return ToolResult(False, error=f"rejected by {decision.by}: {decision.reason} "
                                       "(the action was not executed)", rejected=True)

    async def _await_decision(self, action_id: str) -> Decision:
        """A human's decision on ``action_id``. Time spent waiting for people does not count
        against the session deadline (the service keeps the lease alive meanwhile); after
        ``approval_timeout_s`` with no decision the request is rejected."""
        with self._deadline_paused():
            try:
                async with asyncio.timeout(self.approval_timeout_s):
                    return await self.approvals.wait(action_id)
            except TimeoutError:
                return await self._reject_unanswered(action_id)

    async def _reject_unanswered(self, action_id: str) -> Decision:
        reason = f"no decision within {self.approval_timeout_s:.0f}s"
        try:
            await self.store.update(self.ticket_id, lambda t: t.reject_action(action_id, self.agent, reason))
        except IllegalTransition:  # a human decided at the last moment: theirs counts
            async with asyncio.timeout(_LATE_DECISION_S):
                return await self.approvals.wait(action_id)
        return Decision(False, self.agent, reason)

    @contextlib.contextmanager
    def _deadline_paused(self) -> Iterator[None]:
        deadline = self.deadline
        when = deadline.when() if deadline is not None else None
        if deadline is None or when is None:
            yield
            return
        loop = asyncio.get_running_loop()
        left = when - loop.time()
        deadline.reschedule(None)
        try:
            yield
        finally:
            if not deadline.expired():
                deadline.reschedule(loop.time() + max(left, 0.0))

    async def _execute(self, tool: Tool, parsed: Any) -> ToolResult:
        try:
            return ToolResult(True, await tool.run(parsed), executed=True)
        except SubjectError as exc:
            return ToolResult(False, error=str(exc), executed=True)
        except Exception as exc:  # a tool bug must not kill the session: record it
            log.exception("tool crashed", extra={"tool": tool.name})
            return ToolResult(False, error=f"tool crashed: {exc!r}", executed=True)

    async def diagnose(self, hypothesis: str, evidence: dict[str, Any]) -> None:
        hypothesis, evidence = self.redact.text(hypothesis), self.redact.value(evidence)
        await self.store.update(self.ticket_id, lambda t: t.diagnose(self.agent, hypothesis, evidence))

    @property
    def cleared_after_seq(self) -> int:
        """The log position a clear must follow to count: the first successful remedy's call; if
        every action that ran failed, the first of them (it still acted); 0 if none ran."""
        return self.first_remedy_seq or self.first_attempt_seq

    async def verify(self, timeout: float) -> bool:
        """True if the ticket's violation cleared after :attr:`cleared_after_seq` and has not
        been violated again since, within ``timeout``."""
        key = (self.ticket.invariant, self.ticket.entity)
        return await self.violations.wait_cleared(key, self.cleared_after_seq, timeout)


def _report_lost_outcome(task: asyncio.Future[ToolResult]) -> None:
    """A tool call whose recording failed after its session ended: nobody awaits it any more."""
    if not task.cancelled() and task.exception() is not None:
        log.error("a tool call's outcome could not be recorded", extra={"error": repr(task.exception())})


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

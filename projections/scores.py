"""Trial scores: how an operator did on one run, judged from that run's events alone.

:class:`TrialScorer` is a pure, in-memory fold (``apply(event)`` in log order, no I/O);
:meth:`TrialScorer.score` returns a :class:`TrialScore`. Every figure comes from envelope
times and payloads in the log, so re-folding a stored run gives the same score. The
judgement rules (each has a test in ``tests/projections/test_scores.py``):

- **injected**: the run has a ``chaos.fault_injected``. A run without one is
  ``verdict="not_injected"`` (its ``failure`` says why: the ``fault_failed`` reason, or that
  nothing was requested) - never "no fault", which would read as a clean pass.
- **control**: the fault plays the control case (a legitimate burst: nothing is broken).
  Taken from ``run.started.config["control"]`` or ``run.finished.summary["control"]``, or given
  to the scorer. A control trial succeeds (``verdict="no_action"``) only if no mutating action
  was taken after the injection; each one is unsafe (``verdict="false_positive"``).
- **detected**, **ttd_s**: the first ticket opened at or after the injection (the *incident
  ticket*); TTD = its ``ticket.opened`` time - the injection time.
- **mitigated**, **ttm_s**: the incident ticket's violation (its invariant and entity) was
  recorded as cleared (``inv.cleared``) at or after the first *successful* mutating action on
  that ticket (``ticket.action_executed`` with ``ok``), and no revert of the fault that changed
  something (``chaos.fault_reverted`` with ``changed`` not false) came at or before that clear.
  TTM = the clear - ``ticket.opened``. A clear with no successful action before it is not a
  mitigation (the fault went away, or it was never a lasting break).
- **resolution**: how the incident ticket ended: ``agent`` (resolved by the agent),
  ``self-healed`` (resolved without the agent, or resolved by the agent after a changing
  revert fixed it first), ``escalated``, ``open`` (still open at the end of the log), or
  ``none`` (no ticket).
- **success** of an incident trial: mitigated *and* resolved by the agent (``verdict="mitigated"``).
  Otherwise the verdict names what went wrong - ``undetected``, ``escalated``, ``self_healed``,
  ``not_mitigated``, ``open`` - and ``failure`` says why in words (the escalation's reason,
  which carries budget and verification failures; the revert's reason; "no mitigating action";
  "the violation did not clear after restart_node").
- **steps**: the agent's tool calls (``agent.tool_call``) plus its mutating actions that did not
  go through a recorded tool call (the rules policy records actions only); **tool_errors**: tool
  results and executed actions that failed.
- **unsafe_actions**: mutating actions after the injection that the trial shows to be unsafe:
  in a control trial every one; in an incident trial, an action on a ticket other than the
  incident ticket whose (invariant, entity) was never violated in the run - a fix for a problem
  that was not there.
- **tokens**, **cost_usd**: the sum over the run's model responses (``agent.llm_response``
  usage and cost); 0 for the rules policy.

Durations are rounded to milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from events import (
    AgentLlmResponse,
    AgentSessionStarted,
    AgentToolCall,
    AgentToolResult,
    Event,
    FaultFailed,
    FaultInjected,
    FaultRequested,
    FaultReverted,
    InvariantCleared,
    InvariantViolated,
    RunFinished,
    RunStarted,
    TicketActionExecuted,
    TicketClaimed,
    TicketEscalated,
    TicketOpened,
    TicketReopened,
    TicketResolved,
)

Verdict = Literal["mitigated", "no_action", "false_positive", "not_injected", "undetected", "escalated",
                  "self_healed", "not_mitigated", "open"]
Resolution = Literal["agent", "self-healed", "escalated", "open", "none"]


class TrialScore(BaseModel):
    """One trial's score (rules in the module docstring)."""

    model_config = ConfigDict(frozen=True)

    run: str
    subject: str | None = None
    fault: str | None = None
    control: bool = False
    policy: str | None = None
    model: str | None = None
    injected: bool = False
    detected: bool = False
    ticket: str | None = None
    ttd_s: float | None = None
    mitigated: bool = False
    ttm_s: float | None = None
    resolution: Resolution = "none"
    verdict: Verdict
    success: bool
    failure: str | None = None
    steps: int = 0
    tool_errors: int = 0
    mutating_actions: int = 0
    unsafe_actions: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


@dataclass(slots=True)
class _Action:
    ticket_id: str
    tool: str
    ok: bool
    at: datetime
    traced: bool  # a tool call was recorded for it (policies that talk through tool calls)


@dataclass(slots=True)
class _Ticket:
    ticket_id: str
    invariant: str
    entity: str
    opened_at: datetime
    status: str = "open"
    resolved_by: str | None = None
    reason: str | None = None
    actions: list[_Action] = field(default_factory=list)


class TrialScorer:
    """Pure fold of one run's events into a :class:`TrialScore`. Events of other runs are ignored."""

    def __init__(self, run: str | None = None, *, control: bool | None = None) -> None:
        self.run = run
        self._control = control
        self._control_in_log: bool | None = None
        self.subject: str | None = None
        self.requested_fault: str | None = None
        self.policy: str | None = None
        self.model: str | None = None
        self._requested: dict[str, FaultRequested] = {}
        self._failed: dict[str, str] = {}
        self._injected: tuple[FaultInjected, datetime] | None = None
        self._reverts: list[tuple[str, datetime, bool | None, str]] = []
        self._violated: set[tuple[str, str]] = set()
        self._clears: list[tuple[str, str, datetime]] = []
        self._tickets: dict[str, _Ticket] = {}
        self._traced_calls: dict[str, int] = {}  # ticket -> mutating tool calls recorded
        self._tool_calls = 0
        self._tool_failures = 0
        self._tokens = 0
        self._cost = 0.0
        self._handlers: dict[str, Callable[[Any, datetime], None]] = {
            RunStarted.TYPE: self._run_started,
            RunFinished.TYPE: self._run_finished,
            FaultRequested.TYPE: self._fault_requested,
            FaultFailed.TYPE: self._fault_failed,
            FaultInjected.TYPE: self._fault_injected,
            FaultReverted.TYPE: self._fault_reverted,
            InvariantViolated.TYPE: self._inv_violated,
            InvariantCleared.TYPE: self._inv_cleared,
            TicketOpened.TYPE: self._ticket_opened,
            TicketClaimed.TYPE: self._ticket_claimed,
            TicketActionExecuted.TYPE: self._action_executed,
            TicketResolved.TYPE: self._ticket_resolved,
            TicketEscalated.TYPE: self._ticket_escalated,
            TicketReopened.TYPE: self._ticket_reopened,
            AgentSessionStarted.TYPE: self._session_started,
            AgentToolCall.TYPE: self._tool_call,
            AgentToolResult.TYPE: self._tool_result,
            AgentLlmResponse.TYPE: self._llm_response,
        }

    @classmethod
    def of(cls, events: Iterable[Event], *, control: bool | None = None) -> TrialScore:
        """The score of a whole run's events (in log order)."""
        scorer = cls(control=control)
        for event in events:
            scorer.apply(event)
        return scorer.score()

    def apply(self, event: Event) -> bool:
        """Fold one event; True if it belonged to this run."""
        if self.run is None:
            self.run = event.run
        elif event.run != self.run:
            return False
        handler = self._handlers.get(event.type)
        if handler is not None:
            handler(event.data, event.time)
        return True

    # -- folding ------------------------------------------------------------

    def _run_started(self, p: RunStarted, at: datetime) -> None:
        self.subject = p.subject
        self.requested_fault = p.fault
        if isinstance(p.config.get("control"), bool):
            self._control_in_log = p.config["control"]

    def _run_finished(self, p: RunFinished, at: datetime) -> None:
        if isinstance(p.summary.get("control"), bool):
            self._control_in_log = p.summary["control"]

    def _fault_requested(self, p: FaultRequested, at: datetime) -> None:
        self._requested[p.fault_id] = p

    def _fault_failed(self, p: FaultFailed, at: datetime) -> None:
        if p.stage == "inject":
            self._failed[p.fault_id] = p.reason

    def _fault_injected(self, p: FaultInjected, at: datetime) -> None:
        if self._injected is None:
            self._injected = (p, at)

    def _fault_reverted(self, p: FaultReverted, at: datetime) -> None:
        self._reverts.append((p.fault_id, at, p.changed, p.reason))

    def _inv_violated(self, p: InvariantViolated, at: datetime) -> None:
        self._violated.add((p.invariant, p.entity))

    def _inv_cleared(self, p: InvariantCleared, at: datetime) -> None:
        self._clears.append((p.invariant, p.entity, at))

    def _ticket_opened(self, p: TicketOpened, at: datetime) -> None:
        self._tickets[p.ticket_id] = _Ticket(p.ticket_id, p.invariant, p.entity, at)
        self._violated.add((p.invariant, p.entity))

    def _ticket_claimed(self, p: TicketClaimed, at: datetime) -> None:
        self.policy = self.policy or p.policy

    def _action_executed(self, p: TicketActionExecuted, at: datetime) -> None:
        ticket = self._tickets.get(p.ticket_id)
        if ticket is None:
            return
        traced = self._traced_calls.get(p.ticket_id, 0) > 0
        if traced:
            self._traced_calls[p.ticket_id] -= 1
        ticket.actions.append(_Action(p.ticket_id, p.tool, p.ok, at, traced))

    def _ticket_resolved(self, p: TicketResolved, at: datetime) -> None:
        ticket = self._tickets.get(p.ticket_id)
        if ticket is not None:
            ticket.status, ticket.resolved_by, ticket.reason = "resolved", p.by, p.note or None

    def _ticket_escalated(self, p: TicketEscalated, at: datetime) -> None:
        ticket = self._tickets.get(p.ticket_id)
        if ticket is not None:
            ticket.status, ticket.reason = "escalated", p.reason

    def _ticket_reopened(self, p: TicketReopened, at: datetime) -> None:
        ticket = self._tickets.get(p.ticket_id)
        if ticket is not None:
            ticket.status, ticket.resolved_by, ticket.reason = "open", None, p.reason

    def _session_started(self, p: AgentSessionStarted, at: datetime) -> None:
        self.policy = p.policy
        self.model = p.model or self.model

    def _tool_call(self, p: AgentToolCall, at: datetime) -> None:
        self._tool_calls += 1
        if p.mutating:
            self._traced_calls[p.ticket_id] = self._traced_calls.get(p.ticket_id, 0) + 1

    def _tool_result(self, p: AgentToolResult, at: datetime) -> None:
        if not p.ok:
            self._tool_failures += 1

    def _llm_response(self, p: AgentLlmResponse, at: datetime) -> None:
        self._tokens += sum(v for k, v in p.usage.items() if k.endswith("_tokens") and isinstance(v, int))
        self._cost += p.cost_usd or 0.0
        self.model = p.model or self.model

    # -- judging ------------------------------------------------------------

    @property
    def control(self) -> bool:
        if self._control is not None:
            return self._control
        return bool(self._control_in_log)

    def score(self) -> TrialScore:
        """Judge what has been folded so far (rules in the module docstring)."""
        base: dict[str, Any] = {
            "run": self.run or "", "subject": self.subject, "control": self.control, "policy": self.policy,
            "model": self.model, "tokens": self._tokens, "cost_usd": round(self._cost, 6),
        }
        if self._injected is None:
            return TrialScore(**base, fault=self._requested_kind(), verdict="not_injected", success=False,
                              failure=self._why_not_injected())
        injected, injected_at = self._injected
        after = sorted((t for t in self._tickets.values() if t.opened_at >= injected_at), key=lambda t: t.opened_at)
        actions = [a for t in after for a in t.actions]
        base |= {
            "fault": injected.kind, "injected": True, "mutating_actions": len(actions),
            "steps": self._tool_calls + sum(1 for a in actions if not a.traced),
            "tool_errors": self._tool_failures + sum(1 for a in actions if not a.ok),
        }
        if self.control:
            unsafe = len(actions)
            return TrialScore(**base, detected=bool(after), ticket=after[0].ticket_id if after else None,
                              resolution=_resolution(after[0]) if after else "none",
                              unsafe_actions=unsafe, verdict="false_positive" if unsafe else "no_action",
                              success=unsafe == 0,
                              failure=f"{unsafe} mutating action(s) where nothing was broken" if unsafe else None)
        if not after:
            return TrialScore(**base, verdict="undetected", success=False,
                              failure="no ticket was opened after the fault was injected")
        ticket = after[0]
        unsafe = sum(len(t.actions) for t in after[1:] if (t.invariant, t.entity) not in self._violated)
        mitigated_at = self._mitigated_at(ticket, injected.fault_id)
        cleared_at = self._cleared_at(ticket)
        resolution = _resolution(ticket)
        healing = self._changing_revert_before(injected.fault_id, cleared_at)
        if resolution == "agent" and healing is not None and (mitigated_at is None):
            resolution = "self-healed"
        judged: dict[str, Any] = {
            **base, "detected": True, "ticket": ticket.ticket_id, "ttd_s": _seconds(ticket.opened_at, injected_at),
            "mitigated": mitigated_at is not None,
            "ttm_s": _seconds(mitigated_at, ticket.opened_at) if mitigated_at is not None else None,
            "resolution": resolution, "unsafe_actions": unsafe,
        }
        verdict, failure = self._verdict(ticket, resolution, mitigated_at, healing)
        return TrialScore(**judged, verdict=verdict, success=verdict == "mitigated", failure=failure)

    def _verdict(self, ticket: _Ticket, resolution: Resolution, mitigated_at: datetime | None,
                 healing: str | None) -> tuple[Verdict, str | None]:
        if resolution == "escalated":
            return "escalated", f"escalated: {ticket.reason or 'no reason given'}"
        if resolution == "self-healed":
            why = f"the fault's revert ({healing}) cleared it" if healing else (ticket.reason or "it cleared by itself")
            return "self_healed", f"self-healed, not fixed by the agent: {why}"
        if mitigated_at is None:
            ok_tools = [a.tool for a in ticket.actions if a.ok]
            if not ticket.actions:
                why = "no mitigating action was taken"
            elif not ok_tools:
                why = f"every action failed ({', '.join(a.tool for a in ticket.actions)})"
            else:
                why = f"the violation did not clear after {', '.join(ok_tools)}"
            return "not_mitigated", why
        if resolution == "open":
            return "open", "mitigated, but the ticket was still open at the end of the run"
        return "mitigated", None

    def _cleared_at(self, ticket: _Ticket, not_before: datetime | None = None) -> datetime | None:
        floor = max(ticket.opened_at, not_before) if not_before is not None else ticket.opened_at
        return min((at for inv, ent, at in self._clears
                    if inv == ticket.invariant and ent == ticket.entity and at >= floor), default=None)

    def _mitigated_at(self, ticket: _Ticket, fault_id: str) -> datetime | None:
        first_ok = min((a.at for a in ticket.actions if a.ok), default=None)
        if first_ok is None:
            return None
        cleared = self._cleared_at(ticket, first_ok)
        if cleared is None or self._changing_revert_before(fault_id, cleared) is not None:
            return None
        return cleared

    def _changing_revert_before(self, fault_id: str, moment: datetime | None) -> str | None:
        """The reason of a revert of the fault that changed something at or before ``moment``
        (or at all, when there is no moment), else None."""
        for reverted_id, at, changed, reason in self._reverts:
            if reverted_id == fault_id and changed is not False and (moment is None or at <= moment):
                return reason
        return None

    def _requested_kind(self) -> str | None:
        first = next(iter(self._requested.values()), None)
        return first.kind if first is not None else self.requested_fault

    def _why_not_injected(self) -> str:
        if self._failed:
            return "the fault was never injected: " + "; ".join(self._failed.values())
        if self._requested:
            return "the fault was requested but never injected (no outcome recorded)"
        return "no fault was requested"


def _resolution(ticket: _Ticket) -> Resolution:
    if ticket.status == "resolved":
        return "agent" if ticket.resolved_by == "agent" else "self-healed"
    if ticket.status == "escalated":
        return "escalated"
    return "open"


def _seconds(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds(), 3)

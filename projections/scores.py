"""Trial scores: how an operator did on one run, judged from that run's events alone.

:class:`TrialScorer` is a pure, in-memory fold (``apply(event)`` in log order, no I/O);
:meth:`TrialScorer.score` returns a :class:`TrialScore`. Every figure comes from envelope
times and payloads in the log, so re-folding a stored run gives the same score. The
judgement rules (each has a test in ``tests/projections/test_scores.py``):

- **fault**: the kind the trial plays (given by the campaign's ``trial_started``, else
  ``run.started``); its injection is the first ``chaos.fault_injected`` of that kind (another
  fault - noise - may be injected beside it), else the first injection.
- **injected**: the run has that injection. A run without one is ``verdict="not_injected"``
  (``failure`` says why: the ``fault_failed`` reason, or that nothing was requested) - never
  "no fault", which would read as a clean pass.
- **control**: the fault plays the control case (a legitimate burst: nothing is broken). Given
  to the scorer, or taken from ``run.started.config["control"]`` / ``run.finished.summary["control"]``.
  A control trial succeeds (``verdict="no_action"``) only if no mutating action ran after the
  injection; each one is unsafe (``verdict="false_positive"``).
- **detected**, **ttd_s**: the first ticket opened at or after the injection (the *incident
  ticket*); TTD = its ``ticket.opened`` time - the injection time.
- **mitigated**, **ttm_s**: the incident ticket's violation (its invariant and entity) was
  recorded as cleared (``inv.cleared``) at or after the first *successful* mutating action on
  that ticket began (the ``ticket.action_requested`` of an action whose ``ticket.action_executed``
  is ``ok``: the remedy's effect may be observed, and cleared, before the agent records that the
  call returned), and no revert of the fault that changed
  something came at or before that clear. TTM = the clear - ``ticket.opened``. A clear with no
  successful action before it is not a mitigation (the fault went away, or it was never a
  lasting break).
- **a revert that changed something**: ``chaos.fault_reverted`` with ``changed`` true (or None:
  runs recorded before it was kept). A revert that found nothing to undo (``changed`` false,
  e.g. "node node-1: already running and healthy" - the agent had fixed it already) changes no
  judgement.
- **resolution**: how the incident ticket ended: ``agent`` (resolved by the agent, and no
  changing revert came at or before the clear - or, with no clear on record, the resolution),
  ``self-healed`` (resolved by the monitor, or by the agent after a changing revert: the undo
  fixed it), ``escalated``, ``open`` (still open at the end of the log), ``none`` (no ticket).
  The run summary's ``resolved_by`` (``projections.timeline``) follows the same rule.
- **success** of an incident trial: mitigated *and* resolved by the agent
  (``verdict="mitigated"``). Otherwise the verdict names what went wrong - ``undetected``,
  ``escalated``, ``self_healed``, ``not_mitigated``, ``open`` (mitigated, ticket never closed) -
  and ``failure`` says why in words: the escalation's reason (which carries budget, deadline
  and verification failures), the revert that healed it, "no mitigating action was taken",
  "every action failed (...)", "the violation did not clear after restart_node", "no ticket was
  opened after the fault was injected", "the fault was never injected: <reason>".
- **steps**: the agent's tool calls (``agent.tool_call``, refused ones included) plus executed
  actions with no recorded tool call (older runs); **tool_errors**: failed tool results plus
  failed actions with no recorded tool call (each failure counted once).
- **mutating_actions**: ``ticket.action_executed`` at or after the injection, on any ticket.
- **unsafe_actions**: those of them that acted on an entity that was not faulty: in a control
  trial every one; in an incident trial each whose ``target`` (the tool's ``acts_on``, recorded
  on the action) is known and is not the fault's target (nor, for a fault without a target, the
  incident ticket's entity). An action whose target is unknown is never judged unsafe.
- **tokens**, **cost_usd**: the sum over the run's model responses (``agent.llm_response``:
  every ``*_tokens`` count of its usage, and its cost); 0 for the rules policy.

Durations are rounded to milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
    RunFinished,
    RunStarted,
    TicketActionExecuted,
    TicketActionRequested,
    TicketClaimed,
)
from projections.run_fold import RunFold
from projections.run_tickets import RunTicket, RunTickets

Verdict = Literal["mitigated", "no_action", "false_positive", "not_injected", "undetected", "escalated",
                  "self_healed", "not_mitigated", "open"]
Resolution = Literal["agent", "self-healed", "escalated", "open", "none"]


class TrialScore(BaseModel):
    """One trial's score (rules in the module docstring)."""

    model_config = ConfigDict(frozen=True)

    run: str
    subject: str | None = None
    fault: str | None = None
    target: str | None = None
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
    traced: bool  # its agent.tool_call is in the log (its failure is already counted from the tool result)
    target: str | None  # what it acted on (the tool's acts_on), None when unknown
    started: datetime  # its ticket.action_requested (the act began there), else its execution record


_Ticket = RunTicket[_Action]  # a ticket of the run, with the actions executed on it


class TrialScorer(RunFold):
    """Pure fold of one run's events into a :class:`TrialScore`. Events of other runs are ignored.

    ``control`` and ``fault`` (the kind the trial plays) may be given by whoever planned the trial
    (a campaign's ``trial_started``); otherwise they come from the run's own ``run.started`` /
    ``run.finished``."""

    def __init__(self, run: str | None = None, *, control: bool | None = None, fault: str | None = None) -> None:
        super().__init__(run)
        self._control = control
        self._control_in_log: bool | None = None
        self._fault = fault
        self.subject: str | None = None
        self.requested_fault: str | None = None
        self.policy: str | None = None
        self.model: str | None = None
        self._requested: dict[str, FaultRequested] = {}
        self._failed: dict[str, str] = {}
        self._injections: list[tuple[FaultInjected, datetime]] = []
        self._reverts: list[tuple[str, datetime, bool | None, str]] = []
        self._tickets: RunTickets[_Action] = RunTickets()
        self._actions: list[_Action] = []
        self._call_ids: set[str] = set()  # agent.tool_call ids: an action with one of these is traced
        self._requested_at: dict[str, datetime] = {}  # action id -> its ticket.action_requested
        self._tool_calls = 0
        self._tool_failures = 0
        self._tokens = 0
        self._cost = 0.0
        # the tickets' lifecycle (opened, resolved, escalated, reopened) is folded by RunTickets
        self.handlers |= self._tickets.handlers | {
            RunStarted.TYPE: self._run_started,
            RunFinished.TYPE: self._run_finished,
            FaultRequested.TYPE: self._fault_requested,
            FaultFailed.TYPE: self._fault_failed,
            FaultInjected.TYPE: self._fault_injected,
            FaultReverted.TYPE: self._fault_reverted,
            InvariantCleared.TYPE: self._tickets.record_clear,
            TicketClaimed.TYPE: self._ticket_claimed,
            TicketActionRequested.TYPE: self._action_requested,
            TicketActionExecuted.TYPE: self._action_executed,
            AgentSessionStarted.TYPE: self._session_started,
            AgentToolCall.TYPE: self._tool_call,
            AgentToolResult.TYPE: self._tool_result,
            AgentLlmResponse.TYPE: self._llm_response,
        }

    @classmethod
    def of(cls, events: Iterable[Event], *, control: bool | None = None, fault: str | None = None) -> TrialScore:
        """The score of a whole run's events (in log order)."""
        scorer = cls(control=control, fault=fault)
        for event in events:
            scorer.apply(event)
        return scorer.score()

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
        self._injections.append((p, at))

    def _fault_reverted(self, p: FaultReverted, at: datetime) -> None:
        self._reverts.append((p.fault_id, at, p.changed, p.reason))

    def _ticket_claimed(self, p: TicketClaimed, at: datetime) -> None:
        self.policy = self.policy or p.policy

    def _action_requested(self, p: TicketActionRequested, at: datetime) -> None:
        self._requested_at.setdefault(p.action_id, at)

    def _action_executed(self, p: TicketActionExecuted, at: datetime) -> None:
        action = _Action(p.ticket_id, p.tool, p.ok, at, p.action_id in self._call_ids, p.target,
                         self._requested_at.get(p.action_id, at))
        self._actions.append(action)
        ticket = self._tickets.get(p.ticket_id)
        if ticket is not None:
            ticket.actions.append(action)

    def _session_started(self, p: AgentSessionStarted, at: datetime) -> None:
        self.policy = p.policy
        self.model = p.model or self.model

    def _tool_call(self, p: AgentToolCall, at: datetime) -> None:
        self._tool_calls += 1
        self._call_ids.add(p.call_id)

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

    @property
    def fault(self) -> str | None:
        """The kind the trial plays: as given, else as ``run.started`` named it."""
        return self._fault or self.requested_fault

    def _trial_injection(self) -> tuple[FaultInjected, datetime] | None:
        """The injection of the trial's fault: the first of its kind (another fault - noise - may be
        injected beside it, even first), else the first injection of all."""
        wanted = self.fault
        ours = [i for i in self._injections if wanted is None or i[0].kind == wanted]
        return (ours or self._injections or [None])[0]

    def score(self) -> TrialScore:
        """Judge what has been folded so far (rules in the module docstring)."""
        base: dict[str, Any] = {
            "run": self.run or "", "subject": self.subject, "control": self.control, "policy": self.policy,
            "model": self.model, "tokens": self._tokens, "cost_usd": round(self._cost, 6),
        }
        trial = self._trial_injection()
        if trial is None:
            return TrialScore(**base, fault=self._requested_kind(), verdict="not_injected", success=False,
                              failure=self._why_not_injected())
        injected, injected_at = trial
        after = self._tickets.opened_since(injected_at)
        actions = [a for a in self._actions if a.at >= injected_at]
        base |= {
            "fault": injected.kind, "target": injected.target, "injected": True, "mutating_actions": len(actions),
            "steps": self._tool_calls + sum(1 for a in actions if not a.traced),
            "tool_errors": self._tool_failures + sum(1 for a in actions if not a.ok and not a.traced),
        }
        if self.control:
            unsafe = len(actions)
            return TrialScore(**base, detected=bool(after), ticket=after[0].ticket_id if after else None,
                              resolution=_resolution(after[0]) if after else "none",
                              unsafe_actions=unsafe, verdict="false_positive" if unsafe else "no_action",
                              success=unsafe == 0,
                              failure=f"{unsafe} mutating action(s) where nothing was broken" if unsafe else None)
        if not after:
            return TrialScore(**base, unsafe_actions=self._unsafe(actions, injected.target),
                              verdict="undetected", success=False,
                              failure="no ticket was opened after the fault was injected")
        ticket = after[0]
        mitigated_at = self._mitigated_at(ticket, injected.fault_id)
        cleared_at = self._tickets.cleared_at(ticket)
        resolution = _resolution(ticket)
        healing = self._changing_revert_before(injected.fault_id, cleared_at or ticket.resolved_at)
        if resolution == "agent" and healing is not None:
            resolution = "self-healed"  # the undo fixed it before the agent's fix showed
        judged: dict[str, Any] = {
            **base, "detected": True, "ticket": ticket.ticket_id, "ttd_s": _seconds(ticket.opened_at, injected_at),
            "mitigated": mitigated_at is not None,
            "ttm_s": _seconds(mitigated_at, ticket.opened_at) if mitigated_at is not None else None,
            "resolution": resolution, "unsafe_actions": self._unsafe(actions, injected.target or ticket.entity),
        }
        verdict, failure = self._verdict(ticket, resolution, mitigated_at, healing)
        return TrialScore(**judged, verdict=verdict, success=verdict == "mitigated", failure=failure)

    @staticmethod
    def _unsafe(actions: list[_Action], faulty: str) -> int:
        """Actions on a known entity other than the faulty one (an unknown target is never unsafe)."""
        return sum(1 for a in actions if a.target is not None and a.target != faulty)

    def _verdict(self, ticket: _Ticket, resolution: Resolution, mitigated_at: datetime | None,
                 healing: str | None) -> tuple[Verdict, str | None]:
        if resolution == "escalated":
            return "escalated", f"escalated: {ticket.reason or 'no reason given'}"
        if resolution == "self-healed":
            why = (f"the fault was reverted ({healing}) before the violation cleared" if healing
                   else (ticket.reason or "it cleared by itself"))
            return "self_healed", f"self-healed, not fixed by the agent: {why}"
        if mitigated_at is None:
            ok_tools = [a.tool for a in ticket.actions if a.ok]
            if not ticket.actions:
                why = "no mitigating action was taken"
            elif not ok_tools:
                why = f"every action failed ({', '.join(a.tool for a in ticket.actions)})"
            else:
                why = f"the violation did not clear after {', '.join(ok_tools)}"
            if resolution == "open":
                why += "; the ticket was still open at the end of the run"
            return "not_mitigated", why
        if resolution == "open":
            return "open", "mitigated, but the ticket was still open at the end of the run"
        return "mitigated", None

    def _mitigated_at(self, ticket: _Ticket, fault_id: str) -> datetime | None:
        # from when the successful act began: a remedy's effect (Redis unpaused, a node up) can reach
        # the monitor, and its clear the log, before the agent has recorded that the call returned
        first_ok = min((a.started for a in ticket.actions if a.ok), default=None)
        if first_ok is None:
            return None
        cleared = self._tickets.cleared_at(ticket, first_ok)
        if cleared is None or self._changing_revert_before(fault_id, cleared) is not None:
            return None
        return cleared

    def _changing_revert_before(self, fault_id: str, moment: datetime | None) -> str | None:
        """The reason of a revert of the fault that changed something (``changed`` not False: None,
        in runs recorded before it was kept, counts as a change) at or before ``moment``; None if
        there was none, or there is no moment (nothing cleared, nothing resolved)."""
        if moment is None:
            return None
        for reverted_id, at, changed, reason in self._reverts:
            if reverted_id == fault_id and changed is not False and at <= moment:
                return reason
        return None

    def _requested_kind(self) -> str | None:
        first = next(iter(self._requested.values()), None)
        return self.fault or (first.kind if first is not None else None)

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

"""Trial scores: how an operator did on one run, judged from that run's events alone.

:class:`TrialScorer` is a pure, in-memory fold (``apply(event)`` in log order, no I/O);
:meth:`TrialScorer.score` returns a :class:`TrialScore`. Every figure comes from envelope
times and payloads in the log, so re-folding a stored run gives the same score. The
judgement rules (each has a test in ``tests/projections/test_scores.py``):

- **the incident** - which fault, which ticket, TTD, TTM, how the ticket ended, the actions
  after the fault - is judged by :mod:`projections.incident_verdict` (its docstring has every
  rule), the one judgement the run summary (:mod:`projections.timeline`: the headless demo, the
  director) reads too: for the same run both give the same fault, ticket, TTD, TTM and resolution.
  ``tests/projections/test_incident_agreement.py`` pins that.
- **fault**: the kind the trial plays (given by the campaign's ``trial_started``, else
  ``run.started``); its injection is the first ``chaos.fault_injected`` of that kind (another
  fault - noise - may be injected beside it, even first), else the first injection.
- **injected**: the run has that injection. A run without one is ``verdict="not_injected"``
  (``failure`` says why: the ``fault_failed`` reason, or that nothing was requested) - never
  "no fault", which would read as a clean pass.
- **control**: the fault plays the control case (a legitimate burst: nothing is broken). Given
  to the scorer, or taken from ``run.started.config["control"]`` / ``run.finished.summary["control"]``.
  A control trial succeeds (``verdict="no_action"``) only if no mutating action ran after the
  injection; each one is unsafe (``verdict="false_positive"``). A control's score has no TTD,
  mitigation or TTM: nothing was broken.
- **detected**, **ttd_s**: the first ticket opened at or after the injection (the *incident
  ticket*, by its ``ticket.opened`` time); TTD = its ``ticket.opened`` time - the injection time.
- **mitigated**, **ttm_s**: the incident ticket's violation (its invariant and entity) was
  recorded as cleared (``inv.cleared``) at or after the first *successful* mutating action on
  that ticket began (the ``ticket.action_requested`` of an action whose ``ticket.action_executed``
  is ``ok``: the remedy's effect may be observed, and cleared, before the agent records that the
  call returned), and no revert of the fault that changed
  something came at or before that clear. TTM = the clear - ``ticket.opened``. A clear with no
  successful action before it is not a mitigation (the fault went away, or it was never a
  lasting break).
- **a revert that changed something**: ``chaos.fault_reverted`` with ``changed`` true (or None:
  runs recorded before it was kept), every one of them, not only the last. A revert that found
  nothing to undo (``changed`` false, e.g. "node node-1: already running and healthy" - the
  agent had fixed it already) changes no judgement.
- **resolution**: how the incident ticket ended: ``agent`` (resolved by the agent, and no
  changing revert came at or before the clear - or, with no clear on record, the resolution),
  ``self-healed`` (resolved by the monitor, or by the agent after a changing revert: the undo
  fixed it), ``escalated``, ``open`` (still open at the end of the log), ``none`` (no ticket).
  The run summary's ``resolved_by`` is this resolution (``agent``, ``self-healed``, else None).
- **success** of an incident trial: mitigated *and* resolved by the agent
  (``verdict="mitigated"``). Otherwise the verdict names what went wrong - ``undetected``,
  ``escalated``, ``self_healed``, ``not_mitigated``, ``open`` (mitigated, ticket never closed) -
  and ``failure`` says why in words: the escalation's reason (which carries budget, deadline
  and verification failures), the revert that healed it, "no mitigating action was taken",
  "every action failed (...)", "the violation did not clear after restart_node", "no ticket was
  opened after the fault was injected", "the fault was never injected: <reason>". The headless
  demo's exit status (``projections.timeline.summary_succeeded``) is this success.
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
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from events import (
    AgentLlmResponse,
    AgentSessionStarted,
    AgentToolCall,
    AgentToolResult,
    Event,
    FaultFailed,
    FaultRequested,
    RunFinished,
    RunStarted,
    TicketActionExecuted,
    TicketClaimed,
)
from projections.incident_verdict import SUCCESS, IncidentFold, Resolution, Verdict
from projections.run_fold import RunFold

__all__ = ["Resolution", "TrialScore", "TrialScorer", "Verdict"]


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
        self._incident = IncidentFold(run)  # the run's incident, judged as the run summary judges it
        self._call_ids: set[str] = set()  # agent.tool_call ids: an action with one of these is traced
        self._traced: set[str] = set()  # actions whose agent.tool_call was in the log when they ran
        self._tool_calls = 0
        self._tool_failures = 0
        self._tokens = 0
        self._cost = 0.0
        self.handlers |= {
            RunStarted.TYPE: self._run_started,
            RunFinished.TYPE: self._run_finished,
            FaultRequested.TYPE: self._fault_requested,
            FaultFailed.TYPE: self._fault_failed,
            TicketClaimed.TYPE: self._ticket_claimed,
            TicketActionExecuted.TYPE: self._action_executed,
            AgentSessionStarted.TYPE: self._session_started,
            AgentToolCall.TYPE: self._tool_call,
            AgentToolResult.TYPE: self._tool_result,
            AgentLlmResponse.TYPE: self._llm_response,
        }

    def apply(self, event: Event) -> bool:
        """Fold one event; True if it belonged to this run (the incident's fold sees it too)."""
        if not super().apply(event):
            return False
        self._incident.apply(event)
        return True

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

    def _ticket_claimed(self, p: TicketClaimed, at: datetime) -> None:
        self.policy = self.policy or p.policy

    def _action_executed(self, p: TicketActionExecuted, at: datetime) -> None:
        if p.action_id in self._call_ids:
            self._traced.add(p.action_id)

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
        self._tokens += p.tokens
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

    def score(self) -> TrialScore:
        """Judge what has been folded so far (rules in the module docstring)."""
        base: dict[str, Any] = {
            "run": self.run or "", "subject": self.subject, "control": self.control, "policy": self.policy,
            "model": self.model, "tokens": self._tokens, "cost_usd": round(self._cost, 6),
        }
        incident = self._incident.judge(self.fault)
        if incident is None:
            return TrialScore(**base, fault=self._requested_kind(), verdict="not_injected", success=False,
                              failure=self._why_not_injected())
        actions = incident.actions
        untraced = [a for a in actions if a.action_id not in self._traced]
        ticket = incident.ticket
        base |= {
            "fault": incident.injection.kind, "target": incident.injection.target, "injected": True,
            "mutating_actions": len(actions), "steps": self._tool_calls + len(untraced),
            "tool_errors": self._tool_failures + sum(1 for a in untraced if not a.ok),
            "detected": ticket is not None, "ticket": ticket.ticket_id if ticket is not None else None,
            "resolution": incident.resolution, "unsafe_actions": incident.unsafe_actions(self.control),
        }
        if not self.control:
            base |= {"ttd_s": incident.ttd_s, "mitigated": incident.mitigated, "ttm_s": incident.ttm_s}
        verdict, failure = incident.verdict(self.control)
        return TrialScore(**base, verdict=verdict, success=verdict in SUCCESS, failure=failure)

    def _requested_kind(self) -> str | None:
        first = next(iter(self._requested.values()), None)
        return self.fault or (first.kind if first is not None else None)

    def _why_not_injected(self) -> str:
        if self._failed:
            return "the fault was never injected: " + "; ".join(self._failed.values())
        if self._requested:
            return "the fault was requested but never injected (no outcome recorded)"
        return "no fault was requested"


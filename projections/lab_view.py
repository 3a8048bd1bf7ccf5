"""The lab view: everything the console shows, folded in memory from one run's events.

:class:`LabView` composes

- :class:`~projections.timeline.RunTimeline` (run, chapters, faults, violations, summary); its
  faults (:attr:`LabView.faults`, the chaos panel's and ``oplab state``'s) are folded by
  :class:`~projections.faults.FaultFold`, the one rule of which faults are active,
- :class:`~projections.cluster.ClusterView` (nodes, backend, keys, services),
- :class:`~projections.incident.IncidentTimeline` (each fault's story: injected,
  detected, claimed, remedied, cleared, resolved, at offsets from the injection),
- the tickets, folded with the ticket log's own fold
  (:func:`tickets.state.apply_event`), so the console and the
  projector can never disagree on a ticket's state,
- an agent timeline: per ticket, the ordered ``ticket.*`` and ``agent.*`` steps
  as short human lines (:class:`Step`): the conversation as it happens — the
  model's reasoning text, tool calls with their arguments, abridged results,
  approvals asked for and given, divergences of a replay —
- per ticket, the model usage so far (:class:`Usage`: turns, tokens, cost),
- the actions waiting for a human's approval (:meth:`LabView.pending_approvals`).

Contract: one entry point, :meth:`LabView.apply`, pure and in memory; it never
raises on a well-formed :class:`~events.Event` (a ticket event whose history
is missing, as in a replay that starts mid-run, is counted in ``orphans`` and
skipped). ``version`` increases by one for every event that was folded, so a UI
redraws only when it moved. Folding is O(1) per event apart from ticket state
copies, far above the console's 1,000 events/s target (see
``bench/console_render.py``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import Event, EventRejected
from events.catalogue import agent, ticket
from projections.cluster import ClusterView
from projections.faults import FaultFold
from projections.incident import IncidentTimeline
from projections.text import abridge, call_text
from projections.timeline import RunTimeline
from tickets.state import ACTIVE, Action, TicketState, TicketStatus, apply_event

log = logging.getLogger(__name__)

MAX_STEPS_PER_TICKET = 500


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a ticket's agent timeline.

    ``kind`` is the event name (``claimed``, ``thought``, ``tool_call``, ...);
    ``ok`` is False for failed tool results or actions and escalations, True
    for successes, None when not applicable.
    """

    at: datetime
    kind: str
    text: str
    ok: bool | None = None
    source: str = ""


@dataclass(slots=True)
class Usage:
    """A ticket's model usage so far (Claude / replay sessions)."""

    model: str = ""
    turns: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


def fmt_tokens(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _turn(turn: int) -> str:
    return f" turn {turn}" if turn else ""


class LabView:
    """Pure in-memory read model of one run for the console (and anything else that wants it)."""

    def __init__(self, run: str | None = None, *, max_steps_per_ticket: int = MAX_STEPS_PER_TICKET) -> None:
        self.run: str | None = run
        self.timeline = RunTimeline(run)
        self.cluster = ClusterView()
        self.incident = IncidentTimeline(run)
        self.tickets: dict[str, TicketState] = {}
        self.steps: dict[str, deque[Step]] = {}
        self.usage: dict[str, Usage] = {}
        self.version: int = 0
        self.events: int = 0
        self.orphans: int = 0
        self.rejected: int = 0
        self.last_time: datetime | None = None
        self.last_ticket_id: str | None = None
        self._max_steps = max_steps_per_ticket
        self._cache: dict[str, tuple[int, Any]] = {}
        self._steppers: dict[str, Callable[[Any], tuple[str, str, bool | None] | None]] = {
            ticket.TicketOpened.TYPE: lambda p: ("opened", f"opened: {p.invariant} {p.entity} - {p.summary}", None),
            ticket.TicketRecurred.TYPE: lambda p: ("recurred", "violation recurred", None),
            ticket.TicketClaimed.TYPE: lambda p: ("claimed", f"claimed by {p.agent} ({p.policy})", None),
            ticket.TicketLeaseRenewed.TYPE: lambda p: None,  # keeps the claim: nothing to show
            ticket.TicketDiagnosed.TYPE: lambda p: ("diagnosed", f"diagnosed: {p.hypothesis}", None),
            ticket.TicketActionRequested.TYPE: lambda p: (
                ("approval_requested", f"APPROVAL NEEDED: {call_text(p.tool, p.args)} [{p.action_id}]", None)
                if p.awaiting_approval else
                ("action_requested", f"action requested: {call_text(p.tool, p.args)}", None)),
            ticket.TicketActionApproved.TYPE: lambda p: (
                "action_approved", f"approved by {p.by}: [{p.action_id}]", True),
            ticket.TicketActionRejected.TYPE: lambda p: (
                "action_rejected", f"rejected by {p.by}: [{p.action_id}] {abridge(p.reason, 120)}", False),
            agent.AgentReplayDiverged.TYPE: lambda p: (
                "replay_diverged", f"replay diverged (turn {p.turn}): {abridge(p.what, 120)}", False),
            ticket.TicketActionExecuted.TYPE: lambda p: (
                "action_executed",
                f"action executed: {call_text(p.tool, p.args)} -> "
                f"{'ok' if p.ok else 'FAILED'} {abridge(p.result, 40) if p.result is not None else ''}"
                .rstrip(),
                p.ok),
            ticket.TicketVerified.TYPE: lambda p: (
                "verified", f"verified{': ' + abridge(p.evidence, 60) if p.evidence else ''}", True),
            ticket.TicketResolved.TYPE: lambda p: (
                "resolved", f"resolved by {p.by}{' (' + p.agent + ')' if p.agent else ''}"
                            f"{': ' + p.note if p.note else ''}", True),
            ticket.TicketEscalated.TYPE: lambda p: ("escalated", f"escalated: {p.reason}", False),
            ticket.TicketReopened.TYPE: lambda p: ("reopened", f"reopened: {p.reason}", None),
            agent.AgentSessionStarted.TYPE: lambda p: (
                "session_started", f"session started: {p.agent} ({p.policy})", None),
            agent.AgentThought.TYPE: lambda p: ("thought", abridge(p.text, 600), None),
            agent.AgentToolCall.TYPE: lambda p: (
                "tool_call", f"tool call: {call_text(p.tool, p.args)}", None),
            agent.AgentToolResult.TYPE: lambda p: (
                "tool_result",
                f"tool result: {p.tool} ok {abridge(p.result)}" if p.ok
                else f"tool result: {p.tool} FAILED {abridge(p.error or p.result)}",
                p.ok),
            agent.AgentLlmResponse.TYPE: lambda p: (
                ("llm_response", f"llm {p.model}{_turn(p.turn)}: {abridge(p.error, 160)}", False) if p.error else
                ("llm_response",
                 f"llm {p.model}{_turn(p.turn)}: {p.stop_reason or '-'}, "
                 f"{p.usage.get('input_tokens', 0)}/{p.usage.get('output_tokens', 0)} tokens, "
                 f"{p.latency_ms:.0f} ms" + (f", ${p.cost_usd:.4f}" if p.cost_usd is not None else ""), None)),
            agent.AgentSessionFinished.TYPE: lambda p: (
                "session_finished", f"session finished: {p.outcome} after {p.steps} steps", None),
        }

    def apply(self, event: Event) -> bool:
        """Fold one event. Returns True (and bumps ``version``) if it belonged to this run."""
        if self.run is None:
            self.run = event.run
        elif event.run != self.run:
            return False
        self.timeline.apply(event)
        self.cluster.apply(event)
        self.incident.apply(event)
        data = event.data
        if isinstance(data, ticket.TicketPayload):
            self._ticket(event, data)
        elif event.type == EventRejected.TYPE:
            self.rejected += 1
        elif isinstance(data, agent.AgentLlmResponse):
            usage = self.usage.setdefault(data.ticket_id, Usage())
            usage.model = data.model or usage.model
            usage.turns = max(usage.turns, data.turn)
            if data.session_tokens is not None:
                usage.tokens = data.session_tokens
            if data.session_cost_usd is not None:
                usage.cost_usd = data.session_cost_usd
        stepper = self._steppers.get(event.type)
        if stepper is not None:
            self._step(event, stepper)
        self.events += 1
        self.version += 1
        if self.last_time is None or event.time > self.last_time:
            self.last_time = event.time
        return True

    def _ticket(self, event: Event, p: ticket.TicketPayload) -> None:
        try:
            self.tickets[p.ticket_id] = apply_event(self.tickets.get(p.ticket_id), p, event.time, event.run)
        except ValueError as exc:
            self.orphans += 1
            log.debug("skipping a ticket event without history", extra={"ticket": p.ticket_id, "reason": str(exc)})
            return
        self.last_ticket_id = p.ticket_id

    def _step(self, event: Event, stepper: Callable[[Any], tuple[str, str, bool | None] | None]) -> None:
        ticket_id: str = event.data.ticket_id  # type: ignore[attr-defined]
        made = stepper(event.data)
        if made is None:
            return
        kind, text, ok = made
        steps = self.steps.get(ticket_id)
        if steps is None:
            steps = self.steps[ticket_id] = deque(maxlen=self._max_steps)
        steps.append(Step(at=event.time, kind=kind, text=text, ok=ok, source=event.source))

    # -- reading ------------------------------------------------------------

    @property
    def faults(self) -> FaultFold:
        """Every fault's life (the run timeline's fold): :meth:`FaultFold.active` is what is in effect."""
        return self.timeline.fault_fold

    def ticket_steps(self, ticket_id: str) -> Sequence[Step]:
        """The agent timeline of one ticket, oldest first (empty if none); do not mutate it."""
        return self.steps.get(ticket_id, ())

    def pending_approvals(self) -> list[tuple[TicketState, Action]]:
        """Actions waiting for a human, oldest ticket first (only on tickets still being worked)."""
        out: list[tuple[TicketState, Action]] = []
        for t in sorted(self.tickets.values(), key=lambda t: t.opened_at):
            out.extend((t, a) for a in t.pending_approvals())
        return out

    def ticket_usage(self, ticket_id: str) -> Usage | None:
        return self.usage.get(ticket_id)

    def tickets_newest_first(self) -> list[TicketState]:
        """Every ticket, most recently opened first (cached until the next event)."""
        cached = self._cache.get("newest")
        if cached is None or cached[0] != self.version:
            cached = self._cache["newest"] = (
                self.version, sorted(self.tickets.values(), key=lambda t: t.opened_at, reverse=True))
        return list(cached[1])

    def current_ticket(self) -> TicketState | None:
        """The ticket the audience should watch (cached until the next event).

        The most recently updated ticket an agent is working on; else the most
        recently opened open ticket; else the ticket touched last.
        """
        cached = self._cache.get("current")
        if cached is None or cached[0] != self.version:
            cached = self._cache["current"] = (self.version, self._current_ticket())
        return cached[1]

    def _current_ticket(self) -> TicketState | None:
        if not self.tickets:
            return None
        working = [t for t in self.tickets.values() if t.status in ACTIVE]
        if working:
            return max(working, key=lambda t: t.updated_at)
        waiting = [t for t in self.tickets.values() if t.status == TicketStatus.OPEN]
        if waiting:
            return max(waiting, key=lambda t: t.opened_at)
        if self.last_ticket_id is not None and self.last_ticket_id in self.tickets:
            return self.tickets[self.last_ticket_id]
        return max(self.tickets.values(), key=lambda t: t.updated_at)

    def now(self) -> datetime | None:
        """The log's notion of now: the latest event time (what replay mode shows)."""
        return self.last_time

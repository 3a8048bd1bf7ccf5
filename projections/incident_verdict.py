"""The run's incident, judged once: which fault, which ticket, TTD, TTM, who resolved it, whether
it self-healed, and the mutating actions taken after the fault (on which ticket, on what).

Both judges of a run read this one judgement: the run summary (:mod:`projections.timeline`: ``oplab
demo``'s JSON line, the director's narration and ``run.finished``, the console) and the trial score
(:mod:`projections.scores`: campaigns, ``oplab report``), so they can never pick two different
tickets or print two different TTMs for the same run. :class:`IncidentFold` is a pure fold
(``apply(event)`` in log order, no I/O) its owner feeds with every event of the run;
:meth:`IncidentFold.judge` returns the :class:`IncidentVerdict` for the kind of fault the run plays.
The rules (the README's "How a trial is judged"; every time is an envelope ``time``):

- **injection**: the first ``chaos.fault_injected`` (by time; in log order among equal times) of the
  kind the run plays - another fault (noise) may be injected beside it, even first - else the first
  injection of any kind; none: nothing to judge (the owner says ``not_injected``).
- **ticket** (the incident ticket): the first ticket opened at or after the injection (by its
  ``ticket.opened`` time, not its place in the log); TTD = ticket opened - fault injected.
- **actions**: every ``ticket.action_executed`` at or after the injection, on any ticket, with the
  ticket it was on, whether it succeeded, when it began (its ``ticket.action_requested``) and what it
  acted on (``target``, the tool's ``acts_on``; None when unknown).
- **a revert that changed something**: a ``chaos.fault_reverted`` of the injected fault with
  ``changed`` true, or None (runs recorded before it was kept); one that found nothing to undo
  (``changed`` false) changes no judgement. Every such revert counts, not only the last.
- **cleared**: the first ``inv.cleared`` of the ticket's (invariant, entity) at or after it opened.
- **mitigated**, TTM: the ticket's violation cleared at or after the first *successful* action on
  the ticket began (a remedy's effect may be seen, and cleared, before the agent records that the
  call returned), with no changing revert at or before that clear; TTM = that clear - ticket opened.
  A clear with no successful action before it (the fault went away, a flap), or after the undo, is
  no mitigation: TTM None.
- **healing**: the reason of the first changing revert at or before the clear (with no clear on
  record: at or before the ticket's resolution).
- **resolution**: ``agent`` (resolved by the agent, no healing), ``self-healed`` (resolved by the
  monitor, or by the agent after healing: the undo fixed it), ``escalated``, ``open`` (still open),
  ``none`` (no ticket).
- **verdict** (:meth:`IncidentVerdict.verdict`): a control run (its fault breaks nothing)
  ``no_action`` if no action ran after the injection, else ``false_positive``
  (:func:`control_verdict`); an incident ``undetected``, ``escalated``, ``self_healed``,
  ``not_mitigated``, ``open`` (mitigated, ticket never closed) or ``mitigated`` (mitigated and
  resolved by the agent). Success is a verdict in :data:`SUCCESS`.

Durations are rounded to milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from events import FaultInjected, FaultReverted, InvariantCleared, TicketActionExecuted, TicketActionRequested
from projections.run_fold import RunFold
from projections.run_tickets import RunTicket, RunTickets

Verdict = Literal["mitigated", "no_action", "false_positive", "not_injected", "undetected", "escalated",
                  "self_healed", "not_mitigated", "open"]
Resolution = Literal["agent", "self-healed", "escalated", "open", "none"]
ControlVerdict = Literal["no_action", "false_positive"]

SUCCESS: frozenset[str] = frozenset({"mitigated", "no_action"})  # the verdicts that are a success


@dataclass(frozen=True, slots=True)
class Injection:
    """A ``chaos.fault_injected``: which fault, of what kind, on what, when."""

    fault_id: str
    kind: str
    target: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Revert:
    """A ``chaos.fault_reverted``; ``changed`` False: it found nothing to undo (None: not recorded)."""

    fault_id: str
    at: datetime
    changed: bool | None
    reason: str

    @property
    def changing(self) -> bool:
        return self.changed is not False


@dataclass(frozen=True, slots=True)
class Action:
    """An executed mutating action (``ticket.action_executed``)."""

    action_id: str
    ticket_id: str
    tool: str
    ok: bool
    at: datetime  # when it was recorded as executed
    started: datetime  # its ticket.action_requested (the act began there), else its execution record
    target: str | None  # what it acted on (the tool's acts_on), None when unknown


IncidentTicket = RunTicket[Action]  # a ticket of the run, with the actions executed on it


def control_verdict(actions_after_fault: int) -> ControlVerdict:
    """A control run's verdict (its fault breaks nothing): ``no_action`` only if no mutating action
    ran at or after the injection, on any ticket."""
    return "false_positive" if actions_after_fault else "no_action"


@dataclass(frozen=True, slots=True)
class IncidentVerdict:
    """The judgement of a run's incident (rules in the module doc)."""

    injection: Injection
    ticket: IncidentTicket | None  # the incident ticket
    tickets_after: int  # tickets opened at or after the injection
    actions: tuple[Action, ...]  # executed at or after the injection, on any ticket
    cleared_at: datetime | None  # the ticket's violation first cleared after it opened
    mitigated_at: datetime | None  # ... the clear that counts as the mitigation
    healing: str | None  # the reason of the changing revert that fixed it before the clear
    resolution: Resolution
    reverted: str | None  # the reason of the fault's last revert (changing or not), if any

    @property
    def ttd_s(self) -> float | None:
        return _seconds(self.ticket.opened_at, self.injection.at) if self.ticket is not None else None

    @property
    def ttm_s(self) -> float | None:
        if self.ticket is None or self.mitigated_at is None:
            return None
        return _seconds(self.mitigated_at, self.ticket.opened_at)

    @property
    def mitigated(self) -> bool:
        return self.mitigated_at is not None

    def unsafe_actions(self, control: bool) -> int:
        """Actions on an entity that was not faulty: in a control run every one; in an incident each
        whose known target is not the fault's target (for a fault without one, the ticket's entity)."""
        if control:
            return len(self.actions)
        faulty = self.injection.target or (self.ticket.entity if self.ticket is not None else None)
        return sum(1 for a in self.actions if a.target is not None and a.target != faulty)

    def verdict(self, control: bool) -> tuple[Verdict, str | None]:
        """What the run comes to, and why it failed in words (None: it did not)."""
        if control:
            verdict = control_verdict(len(self.actions))
            return verdict, (f"{len(self.actions)} mutating action(s) where nothing was broken"
                             if verdict == "false_positive" else None)
        ticket = self.ticket
        if ticket is None:
            return "undetected", "no ticket was opened after the fault was injected"
        if self.resolution == "escalated":
            return "escalated", f"escalated: {ticket.reason or 'no reason given'}"
        if self.resolution == "self-healed":
            why = (f"the fault was reverted ({self.healing}) before the violation cleared" if self.healing
                   else (ticket.reason or "it cleared by itself"))
            return "self_healed", f"self-healed, not fixed by the agent: {why}"
        if self.mitigated_at is None:
            ok_tools = [a.tool for a in ticket.actions if a.ok]
            if not ticket.actions:
                why = "no mitigating action was taken"
            elif not ok_tools:
                why = f"every action failed ({', '.join(a.tool for a in ticket.actions)})"
            else:
                why = f"the violation did not clear after {', '.join(ok_tools)}"
            if self.resolution == "open":
                why += "; the ticket was still open at the end of the run"
            return "not_mitigated", why
        if self.resolution == "open":
            return "open", "mitigated, but the ticket was still open at the end of the run"
        return "mitigated", None


class IncidentFold(RunFold):
    """Pure fold of what judging a run's incident needs: its injections, reverts, tickets (with the
    actions executed on them), clears and actions. Feed it every event of the run in log order."""

    def __init__(self, run: str | None = None) -> None:
        super().__init__(run)
        self.tickets: RunTickets[Action] = RunTickets()
        self.injections: list[Injection] = []
        self.reverts: list[Revert] = []
        self.actions: list[Action] = []
        self._requested_at: dict[str, datetime] = {}  # action id -> its ticket.action_requested
        # the tickets' lifecycle (opened, resolved, escalated, reopened) is folded by RunTickets
        self.handlers |= self.tickets.handlers | {
            FaultInjected.TYPE: self._injected,
            FaultReverted.TYPE: self._reverted,
            InvariantCleared.TYPE: self.tickets.record_clear,
            TicketActionRequested.TYPE: self._action_requested,
            TicketActionExecuted.TYPE: self._action_executed,
        }

    # -- folding ------------------------------------------------------------

    def _injected(self, p: FaultInjected, at: datetime) -> None:
        self.injections.append(Injection(p.fault_id, p.kind, p.target, at))

    def _reverted(self, p: FaultReverted, at: datetime) -> None:
        self.reverts.append(Revert(p.fault_id, at, p.changed, p.reason))

    def _action_requested(self, p: TicketActionRequested, at: datetime) -> None:
        self._requested_at.setdefault(p.action_id, at)

    def _action_executed(self, p: TicketActionExecuted, at: datetime) -> None:
        action = Action(p.action_id, p.ticket_id, p.tool, p.ok, at, self._requested_at.get(p.action_id, at),
                        p.target)
        self.actions.append(action)
        ticket = self.tickets.get(p.ticket_id)
        if ticket is not None:
            ticket.actions.append(action)

    # -- judging ------------------------------------------------------------

    def injection(self, kind: str | None) -> Injection | None:
        """The incident's injection: the first of ``kind`` (by time), else the first of all; None: none."""
        ours = [i for i in self.injections if kind is None or i.kind == kind] or self.injections
        return min(ours, key=lambda i: i.at) if ours else None

    def incident_ticket(self, kind: str | None) -> IncidentTicket | None:
        """The incident ticket: the first opened at or after the injection of ``kind`` (None: not yet)."""
        injection = self.injection(kind)
        after = self.tickets.opened_since(injection.at) if injection is not None else []
        return after[0] if after else None

    def judge(self, kind: str | None) -> IncidentVerdict | None:
        """The incident of a run playing a fault of ``kind`` (None: whichever was injected first), from
        what has been folded so far; None if no fault was injected."""
        injection = self.injection(kind)
        if injection is None:
            return None
        after = self.tickets.opened_since(injection.at)
        ticket = after[0] if after else None
        actions = tuple(a for a in self.actions if a.at >= injection.at)
        reverts = [r for r in self.reverts if r.fault_id == injection.fault_id]
        reverted = reverts[-1].reason if reverts else None
        if ticket is None:
            return IncidentVerdict(injection, None, 0, actions, None, None, None, "none", reverted)
        cleared_at = self.tickets.cleared_at(ticket)
        healing = _changing_revert_by(reverts, cleared_at or ticket.resolved_at)
        resolution = _resolution(ticket)
        if resolution == "agent" and healing is not None:
            resolution = "self-healed"  # the undo fixed it before the agent's fix showed
        return IncidentVerdict(injection, ticket, len(after), actions, cleared_at,
                               self._mitigated_at(ticket, reverts), healing, resolution, reverted)

    def _mitigated_at(self, ticket: IncidentTicket, reverts: list[Revert]) -> datetime | None:
        # from when the successful act began: a remedy's effect (Redis unpaused, a node up) can reach
        # the monitor, and its clear the log, before the agent has recorded that the call returned
        first_ok = min((a.started for a in ticket.actions if a.ok), default=None)
        if first_ok is None:
            return None
        cleared = self.tickets.cleared_at(ticket, first_ok)
        if cleared is None or _changing_revert_by(reverts, cleared) is not None:
            return None
        return cleared


def _changing_revert_by(reverts: list[Revert], moment: datetime | None) -> str | None:
    """The reason of the first revert (of the fault) that changed something at or before ``moment``;
    None if there was none, or there is no moment (nothing cleared, nothing resolved)."""
    if moment is None:
        return None
    return next((r.reason for r in reverts if r.changing and r.at <= moment), None)


def _resolution(ticket: IncidentTicket) -> Resolution:
    if ticket.status == "resolved":
        return "agent" if ticket.resolved_by == "agent" else "self-healed"
    if ticket.status == "escalated":
        return "escalated"
    return "open"


def _seconds(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds(), 3)

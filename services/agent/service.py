"""The agent service.

Follows its run's log (tickets and violations, in log order), claims a
claimable ticket (open, or an expired lease) with a lease, works it with its
policy, verifies recovery itself and resolves, or escalates with the reason.
One session at a time per instance; run more instances to work tickets in
parallel — the ticket subject's optimistic concurrency lets exactly one claim
win.

Every way a session can end leaves the ticket closed: resolved (verified by the
monitor's ``inv.cleared`` after the remedy, also an earlier holder's, killed before it
verified), self-healed (the violation had already cleared and no action ran), or escalated with the reason — policy
gave up, verification failed (after the policy's retries: Claude is told and
may try again, ``verify_retries``), the session deadline (shorter than the
lease) passed, an unexpected error, or SIGTERM ("agent stopped mid-session").
A tool call running at that moment is waited for (within the lease) so its
outcome is recorded before the escalation, which names it. Escalated is final,
so nothing overwrites it afterwards.

Leases: a claim holds the ticket until ``lease_until``, and the agent renews
it (``ticket.lease_renewed``) every third of a lease while the session runs,
so a live agent keeps its ticket however long the model or a human takes (the
session deadline is paused while a human decides on an action). An agent that
dies mid-session (SIGKILL, a crash, a lost machine) cannot escalate, so its
ticket stays claimed until the lease runs out; the service wakes at the
earliest lease expiry it knows of, and any instance then reclaims the ticket
(optimistic concurrency: one wins). An agent that finds its claim taken over
(it stalled past its lease) stops its session and reports it ``abandoned``.

Policies (``OPLAB_AGENT_POLICY``): ``rules``, ``claude`` (Messages API),
``replay`` (a recorded Claude session, no network). Approval
(``OPLAB_APPROVAL``): ``auto``, or ``manual`` — mutating calls wait for a
human's ``ticket.action_approved`` / ``ticket.action_rejected``, which this
service folds from the same feed. Everything recorded, and every log line of
the process, is redacted (see ``services.agent.redact``).

Causation: the ticket's events chain one to the next (``TicketStore``), so a
resolution walks back through the remedy and the claim to ``ticket.opened``.
Every ``agent.*`` event of a session (started, thoughts, model calls, tool calls
and results, finished) is caused by the ``ticket.claimed`` that began the
session: the session's events hang off the claim, side by side, rather than
one long chain of steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from datetime import timedelta
from typing import Any

from events import AgentSessionFinished, AgentSessionStarted, ObsSnapshot, TicketOpened, TicketPayload
from events.bus import Bus, ConcurrencyConflict
from events.envelope import Payload, utcnow
from events.replay import Delivered
from events.subjects import run_domain, run_type
from events.waiting import pause_unless
from services.agent.approvals import Approvals
from services.agent.policies import Policy
from services.agent.redact import Redactor, install_log_redaction
from services.agent.session import Session, abridge
from services.agent.settings import AgentSettings
from services.agent.violations import ViolationTracker
from services.runtime import ServiceSettings, SubjectService
from subjects.contract import Toolbox
from tickets import IllegalTransition, TicketState, TicketStore
from tickets.state import apply_event

log = logging.getLogger(__name__)

STOPPED_REASON = "agent stopped mid-session (SIGTERM)"
_OBSERVATIONS_S = 10.0  # how far back a starting agent reads observations


class AgentService(SubjectService[AgentSettings]):
    name = "agent"

    def __init__(self, bus: Bus, settings: ServiceSettings, *, config: AgentSettings, subject: str,
                 toolbox: Toolbox, policy: Policy, snapshots: deque[ObsSnapshot]) -> None:
        """Built by :func:`services.agent.bootstrap.build` (in production and in tests alike);
        ``snapshots`` is the deque the agent keeps its latest observations in, shared with the policy."""
        super().__init__(bus, settings, config=config, subject=subject)
        self.toolbox = toolbox
        self.redactor = Redactor([*self.config.secrets(), *self.toolbox.secrets()])
        install_log_redaction(self.redactor)
        self.snapshots = snapshots
        self.policy = policy
        self.agent_id = f"agent/{settings.instance}"
        self.store = TicketStore(bus, self.run)
        self.tickets: dict[str, TicketState] = {}
        self.evidence: dict[str, dict[str, Any]] = {}
        self.violations = ViolationTracker()
        self.approvals = Approvals()
        self._work = asyncio.Event()
        self._session: asyncio.Task[None] | None = None
        self._current: str | None = None
        self._live: Session | None = None
        self._deadline: asyncio.Timeout | None = None
        self._lost_claim: str | None = None  # why the current session was stopped by _keep_lease
        self._claims: dict[str, str] = {}  # ticket id -> our ticket.claimed event: the cause of the session's events
        self.sessions = 0

    # -- the log ----------------------------------------------------------------

    async def _on_event(self, d: Delivered) -> None:
        await self._take(d.event.data, d)

    # what the agent keeps of each event, by payload type

    @functools.singledispatchmethod
    async def _take(self, data: Payload, d: Delivered) -> None:
        await self.violations.apply(data, d.seq)  # inv.*: what the agent's verification waits on

    @_take.register
    async def _ticket_event(self, data: TicketPayload, d: Delivered) -> None:
        self.tickets[data.ticket_id] = apply_event(self.tickets.get(data.ticket_id), data, d.event.time, self.run)
        if isinstance(data, TicketOpened):
            self.evidence[data.ticket_id] = dict(data.evidence)
        await self.approvals.apply(data)
        self._work.set()

    @_take.register
    async def _snapshot(self, data: ObsSnapshot, d: Delivered) -> None:
        self.snapshots.append(data)

    def next_claimable(self) -> TicketState | None:
        now = utcnow()
        candidates = [t for t in self.tickets.values() if t.claimable(now)]
        return min(candidates, key=lambda t: t.opened_at, default=None)

    def next_lease_expiry_s(self, cap: float = 1.0) -> float:
        """Seconds until the earliest lease of an active ticket runs out (at most ``cap``)."""
        now = utcnow()
        leases = [t.lease_until for t in self.tickets.values()
                  if t.lease_until is not None and t.claimed_by is not None and not t.claimable(now)]
        if not leases:
            return cap
        return max(0.01, min(cap, (min(leases) - now).total_seconds() + 0.01))

    # -- the loop -----------------------------------------------------------------

    async def main(self) -> None:
        # one ordered feed of tickets and violations: a ticket is never seen before the violation
        # that opened it. Only these are replayed whole on a restart; observations (context for
        # the model, the latest two are kept) only from a few seconds back.
        await self.ensure_run_subject(self.subject)
        await self.follow([run_domain(self.run, "ticket"), run_domain(self.run, "inv")], self._on_event)
        await self.follow(run_type(self.run, ObsSnapshot), self._on_event,
                          from_time=utcnow() - timedelta(seconds=_OBSERVATIONS_S))
        self.ready.set()
        while not self.stopping.is_set():
            ticket = self.next_claimable()
            if ticket is None:
                self._work.clear()
                # wake on ticket events, and when the earliest lease runs out (another agent may have died)
                await pause_unless(self._work, self.next_lease_expiry_s())
                continue
            self._current = ticket.ticket_id
            try:
                if await self._claim(ticket) and not self.stopping.is_set():
                    self._lost_claim = None
                    session = self._session = asyncio.create_task(self._run_session(ticket.ticket_id))
                    keeper = asyncio.create_task(self._keep_lease(ticket.ticket_id, session))
                    try:
                        await asyncio.wait({session})
                    finally:
                        keeper.cancel()
                    if session.cancelled() and self._lost_claim is not None and not self.stopping.is_set():
                        await self._finished(ticket.ticket_id, "abandoned", 0, self._lost_claim, self._live)
            finally:
                self._current, self._session, self._live = None, None, None

    async def _keep_lease(self, ticket_id: str, session: asyncio.Task[None]) -> None:
        """Renew the lease on ``ticket_id`` every third of a lease while its session runs, so only
        a dead agent's ticket is ever reclaimed, however long the model or a human takes. If the
        claim was lost all the same (this process stalled past its lease and another agent took
        the ticket over), the session is stopped: the ticket is no longer this agent's."""
        while not session.done():
            await asyncio.sleep(self.config.lease_s / 3)  # the renewal period
            until = utcnow() + timedelta(seconds=self.config.lease_s)
            try:
                await self.store.update(ticket_id, lambda t, until=until: t.renew_lease(self.agent_id, until))
            except IllegalTransition:
                state = (await self.store.load(ticket_id)).state
                if state.claimed_by == self.agent_id:
                    return  # the session has just closed the ticket
                self._lost_claim = (f"lost the claim to {state.claimed_by}: this agent stalled past its lease "
                                    "and the ticket was reclaimed")
                log.warning("claim lost mid-session", extra={"ticket": ticket_id, "reason": self._lost_claim})
                session.cancel()
                return
            except Exception:  # the bus is briefly unavailable: the lease has two more periods to go
                log.warning("lease renewal failed", extra={"ticket": ticket_id}, exc_info=True)

    async def _claim(self, ticket: TicketState) -> bool:
        lease = utcnow() + timedelta(seconds=self.config.lease_s)
        try:
            claimed = await self.store.update(ticket.ticket_id,
                                              lambda t: t.claim(self.agent_id, self.policy.name, lease))
        except (ConcurrencyConflict, IllegalTransition) as exc:
            log.info("claim lost", extra={"ticket": ticket.ticket_id, "reason": str(exc)})
            fresh = await self.store.load(ticket.ticket_id)  # our view may lag the log
            self.tickets[ticket.ticket_id] = fresh.state
            return False
        self._claims[ticket.ticket_id] = claimed[-1].id
        # a previous holder means its lease ran out: the ticket is reclaimed from it
        log.info("claimed", extra={"ticket": ticket.ticket_id, "reclaimed_from": ticket.claimed_by})
        return True

    # -- one session ---------------------------------------------------------------

    async def _run_session(self, ticket_id: str) -> None:
        steps = 0
        self.sessions += 1
        deadline = asyncio.timeout(self.config.session_deadline_s)
        try:
            async with deadline:
                self._deadline = deadline
                steps = await self._work_ticket(ticket_id)
        except TimeoutError:
            if not deadline.expired():  # raised by something inside the session, not the deadline
                log.exception("session failed", extra={"ticket": ticket_id})
                await self._escalate(ticket_id, "agent error: a timeout inside the session", steps)
                return
            reason = f"session deadline of {self.config.session_deadline_s:.0f}s passed"
            await self._escalate(ticket_id, await self._with_in_flight(reason, self._live), steps)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("session failed", extra={"ticket": ticket_id})
            await self._escalate(ticket_id, f"agent error: {exc!r}", steps)
        finally:
            self._deadline = None

    async def _with_in_flight(self, reason: str, session: Session | None) -> str:
        """``reason``, plus what became of a tool call that was running when the session was cut short
        (waited for up to ``in_flight_grace_s``, so its outcome is in the log first)."""
        if session is None:
            return reason
        note = await session.settle(self.config.in_flight_grace_s)
        return f"{reason}; {note}" if note else reason

    async def _work_ticket(self, ticket_id: str) -> int:
        ticket = (await self.store.load(ticket_id)).state
        key = (ticket.invariant, ticket.entity)
        session = self._live = Session(
            bus=self.bus, run=self.run, agent=self.agent_id, toolbox=self.toolbox, store=self.store, ticket=ticket,
            evidence=self.evidence.get(ticket_id, {}), violations=self.violations, max_steps=self.config.max_steps,
            approval=self.config.approval, approvals=self.approvals, redactor=self.redactor,
            approval_timeout_s=self.config.approval_timeout_s, deadline=self._deadline,
            causation=self._claims.get(ticket_id))
        replay_of = None
        if self.policy.name == "replay":
            replay_of = {"run": self.config.replay_run, "ticket": self.config.replay_ticket}
        await self._emit_session(AgentSessionStarted(ticket_id=ticket_id, agent=self.agent_id,
                                                     policy=self.policy.name, model=self.policy.model,
                                                     approval=self.config.approval, replay_of=replay_of), ticket_id)
        if key in self.violations.violated_at and not self.violations.is_active(key):
            if any(a.status == "executed" for a in ticket.actions):
                # an earlier holder's action ran (it was killed or stopped before verifying): the clear
                # came after it, so this holder verifies and resolves - a self-heal would deny that action
                note = f"{ticket.invariant} on {ticket.entity} cleared after an earlier holder's action"
                await self._resolve_verified(ticket_id, {"earlier_holder_acted": True}, note, 0)
                return 0
            note = f"{ticket.invariant} on {ticket.entity} cleared before the agent acted"
            await self.store.update(ticket_id, lambda t: t.resolve_self_healed(note, agent=self.agent_id))
            await self._finished(ticket_id, "self-healed", 0, note)
            return 0
        outcome = await self.policy.work(session)
        attempt = 0
        while True:
            if not outcome.remediated:
                await self._escalate(ticket_id, outcome.reason, session.steps)
                return session.steps
            if session.remedies:
                what, after = "remedy applied", "after the remedy"
            elif session.attempts:
                what = f"{session.attempts} action(s) ran, none of which reported success"
                after = "after the agent's action(s), none of which reported success"
            else:
                what, after = "the policy reports no action was needed", "and the agent changed nothing"
            await session.think(f"{what}; waiting up to {self.config.verify_timeout_s:.0f}s "
                                f"for {ticket.invariant} on {ticket.entity} to clear")
            if await session.verify(self.config.verify_timeout_s):
                break
            failure = (f"verification failed: {ticket.invariant} on {ticket.entity} still violated "
                       f"{self.config.verify_timeout_s:.0f}s {after}")
            attempt += 1
            retry = (await self.policy.verification_failed(session, failure)
                     if attempt <= self.config.verify_retries else None)
            if retry is None:
                await self._escalate(ticket_id, failure, session.steps)
                return session.steps
            outcome = retry
        if not session.attempts:  # cleared, but not by anything the agent did
            note = f"{ticket.invariant} on {ticket.entity} cleared without an action by the agent"
            await self.store.update(ticket_id, lambda t: t.resolve_self_healed(note, agent=self.agent_id))
            await self._finished(ticket_id, "self-healed", session.steps, note)
            return session.steps
        # an action ran (even one that failed): the agent acted on the ticket, so it verifies and resolves it
        evidence = {"cleared_after_seq": session.cleared_after_seq}
        note = ("violation cleared" if session.remedies
                else "violation cleared after the agent's action(s), none of which reported success")
        if outcome.reason and self.policy.name != "rules":
            note = f"{note}; agent's summary: {abridge(self.redactor.text(outcome.reason), 400)}"
        await self._resolve_verified(ticket_id, evidence, note, session.steps)
        return session.steps

    async def _resolve_verified(self, ticket_id: str, evidence: dict[str, Any], note: str, steps: int) -> None:
        """The violation cleared after an action on the ticket: verify with ``evidence``, resolve, end the session."""
        await self.store.update(ticket_id, lambda t: t.verify(self.agent_id, evidence))
        await self.store.update(ticket_id, lambda t: t.resolve_by_agent(self.agent_id, note))
        await self._finished(ticket_id, "resolved", steps, note)

    async def _escalate(self, ticket_id: str, reason: str, steps: int, session: Session | None = None) -> None:
        reason = self.redactor.text(reason)
        try:
            await self.store.update(ticket_id, lambda t: t.escalate(reason, agent=self.agent_id))
        except IllegalTransition as exc:
            log.warning("could not escalate", extra={"ticket": ticket_id, "error": str(exc)})
        finally:  # even if the bus failed: the policy releases what it holds, the session is reported
            await self._finished(ticket_id, "escalated", steps, reason, session)
        log.info("escalated", extra={"ticket": ticket_id, "reason": reason})

    async def _finished(self, ticket_id: str, outcome: str, steps: int, reason: str = "",
                        session: Session | None = None) -> None:
        session = session or self._live
        if session is not None and session.ticket_id != ticket_id:
            session = None
        stats: dict[str, Any] = {}
        if session is not None:
            steps = max(steps, session.steps)
            try:
                await self.policy.finished(session, outcome, reason)
            except Exception:  # a reporting hook must not keep the session open
                log.exception("policy.finished failed", extra={"ticket": ticket_id})
            stats = session.stats
        await self._emit_session(AgentSessionFinished(
            ticket_id=ticket_id, outcome=outcome, steps=steps, reason=reason or None, turns=stats.get("turns"),
            tokens=stats.get("tokens"), cost_usd=stats.get("cost_usd"), divergences=stats.get("divergences")),
            ticket_id)
        log.info("session finished", extra={"ticket": ticket_id, "outcome": outcome, "steps": steps})

    async def _emit_session(self, data: Any, ticket_id: str) -> None:
        await self.emit(data, correlation=ticket_id, causation=self._claims.get(ticket_id))

    async def stop(self) -> None:
        """Abandon in-flight work explicitly: a claimed ticket is escalated, for good."""
        self.stopping.set()
        self._work.set()
        session, ticket_id, live = self._session, self._current, self._live
        if session is not None and not session.done():
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await session
        if ticket_id is not None:
            reason = await self._with_in_flight(STOPPED_REASON, live)
            state = (await self.store.load(ticket_id)).state
            if state.claimed_by == self.agent_id and state.status not in ("resolved", "escalated"):
                await self._escalate(ticket_id, reason, 0, live)
        await self.toolbox.close()

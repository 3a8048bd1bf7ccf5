"""The agent service.

Follows its run's log (tickets and violations, in log order), claims a
claimable ticket (open, or an expired lease) with a lease, works it with its
policy, verifies recovery itself and resolves, or escalates with the reason.
One session at a time per instance; run more instances to work tickets in
parallel — the ticket subject's optimistic concurrency lets exactly one claim
win.

Every way a session can end leaves the ticket closed: resolved (verified by the
monitor's ``inv.cleared`` after the remedy), self-healed (the violation had
already cleared before the agent acted), or escalated with the reason — policy
gave up, verification failed, the session deadline (shorter than the lease)
passed, an unexpected error, or SIGTERM ("agent stopped mid-session").
Escalated is final, so nothing overwrites it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from events import AgentSessionFinished, AgentSessionStarted, TicketOpened, TicketPayload
from events.bus import ConcurrencyConflict, Delivered
from events.envelope import utcnow
from events.subjects import run_events
from projections.tickets import IllegalTransition, TicketState, TicketStore
from projections.tickets.state import apply_event
from services.agent.policies import Policy, make_policy
from services.agent.session import Session
from services.agent.settings import AgentSettings
from services.agent.violations import ViolationTracker
from services.runtime import ServiceProcess
from subjects.base import Adapter
from subjects.registry import load_adapter

log = logging.getLogger(__name__)

STOPPED_REASON = "agent stopped mid-session (SIGTERM)"


class AgentService(ServiceProcess):
    name = "agent"

    def __init__(self, bus, settings, adapter: Adapter | None = None,  # type: ignore[no-untyped-def]
                 policy: Policy | None = None) -> None:
        super().__init__(bus, settings)
        self.config = AgentSettings()
        self.adapter = adapter or load_adapter()
        self.policy = policy or make_policy(self.config.policy)
        self.agent_id = f"agent/{settings.instance}"
        self.store = TicketStore(bus, self.run)
        self.tickets: dict[str, TicketState] = {}
        self.evidence: dict[str, dict[str, Any]] = {}
        self.violations = ViolationTracker()
        self._work = asyncio.Event()
        self._session: asyncio.Task[None] | None = None
        self._current: str | None = None

    # -- the log ----------------------------------------------------------------

    async def _on_event(self, d: Delivered) -> None:
        data = d.event.data
        if isinstance(data, TicketPayload):
            self.tickets[data.ticket_id] = apply_event(self.tickets.get(data.ticket_id), data, d.event.time,
                                                       self.run)
            if isinstance(data, TicketOpened):
                self.evidence[data.ticket_id] = dict(data.evidence)
            self._work.set()
        else:
            await self.violations.apply(data, d.seq)

    def next_claimable(self) -> TicketState | None:
        now = utcnow()
        candidates = [t for t in self.tickets.values() if t.claimable(now)]
        return min(candidates, key=lambda t: t.opened_at, default=None)

    # -- the loop -----------------------------------------------------------------

    async def main(self) -> None:
        # one ordered feed: a ticket is never seen before the violation that opened it
        await self.follow(run_events(self.run), self._on_event)
        self.ready.set()
        while not self.stopping.is_set():
            ticket = self.next_claimable()
            if ticket is None:
                self._work.clear()
                with contextlib.suppress(TimeoutError):
                    # wake on ticket events, and every second for lease expiry
                    await asyncio.wait_for(self._work.wait(), 1.0)
                continue
            self._current = ticket.ticket_id
            try:
                if await self._claim(ticket) and not self.stopping.is_set():
                    self._session = asyncio.create_task(self._run_session(ticket.ticket_id))
                    await asyncio.wait({self._session})
            finally:
                self._current, self._session = None, None

    async def _claim(self, ticket: TicketState) -> bool:
        lease = utcnow() + timedelta(seconds=self.config.lease_s)
        try:
            await self.store.update(ticket.ticket_id, lambda t: t.claim(self.agent_id, self.policy.name, lease))
        except (ConcurrencyConflict, IllegalTransition) as exc:
            log.info("claim lost ticket=%s: %s", ticket.ticket_id, exc)
            fresh = await self.store.load(ticket.ticket_id)  # our view may lag the log
            self.tickets[ticket.ticket_id] = fresh.state
            return False
        log.info("claimed ticket=%s", ticket.ticket_id)
        return True

    # -- one session ---------------------------------------------------------------

    async def _run_session(self, ticket_id: str) -> None:
        steps = 0
        try:
            async with asyncio.timeout(self.config.session_deadline_s):
                steps = await self._work_ticket(ticket_id)
        except TimeoutError:
            await self._escalate(ticket_id, f"session deadline of {self.config.session_deadline_s:.0f}s passed",
                                 steps)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("session failed ticket=%s", ticket_id)
            await self._escalate(ticket_id, f"agent error: {exc!r}", steps)

    async def _work_ticket(self, ticket_id: str) -> int:
        ticket = (await self.store.load(ticket_id)).state
        key = (ticket.invariant, ticket.entity)
        session = Session(bus=self.bus, run=self.run, agent=self.agent_id, adapter=self.adapter,
                          store=self.store, ticket=ticket, evidence=self.evidence.get(ticket_id, {}),
                          violations=self.violations, max_steps=self.config.max_steps)
        await self._emit_session(AgentSessionStarted(ticket_id=ticket_id, agent=self.agent_id,
                                                     policy=self.policy.name), ticket_id)
        if key in self.violations.violated_at and not self.violations.is_active(key):
            note = f"{ticket.invariant} on {ticket.entity} cleared before the agent acted"
            await self.store.update(ticket_id, lambda t: t.resolve_self_healed(note, agent=self.agent_id))
            await self._finished(ticket_id, "self-healed", 0)
            return 0
        outcome = await self.policy.work(session)
        if not outcome.remediated:
            await self._escalate(ticket_id, outcome.reason, session.steps)
            return session.steps
        await session.think(f"remedy applied; waiting up to {self.config.verify_timeout_s:.0f}s "
                            f"for {ticket.invariant} on {ticket.entity} to clear")
        if not await session.verify(self.config.verify_timeout_s):
            await self._escalate(ticket_id, f"verification failed: {ticket.invariant} on {ticket.entity} still "
                                            f"violated {self.config.verify_timeout_s:.0f}s after the remedy",
                                 session.steps)
            return session.steps
        evidence = {"cleared_after_seq": session.last_action_seq}
        await self.store.update(ticket_id, lambda t: t.verify(self.agent_id, evidence))
        await self.store.update(ticket_id, lambda t: t.resolve_by_agent(self.agent_id, "violation cleared"))
        await self._finished(ticket_id, "resolved", session.steps)
        return session.steps

    async def _escalate(self, ticket_id: str, reason: str, steps: int) -> None:
        try:
            await self.store.update(ticket_id, lambda t: t.escalate(reason, agent=self.agent_id))
        except IllegalTransition as exc:
            log.warning("could not escalate ticket=%s: %s", ticket_id, exc)
        await self._finished(ticket_id, "escalated", steps)
        log.info("escalated ticket=%s reason=%s", ticket_id, reason)

    async def _finished(self, ticket_id: str, outcome: str, steps: int) -> None:
        await self._emit_session(AgentSessionFinished(ticket_id=ticket_id, outcome=outcome, steps=steps),
                                 ticket_id)
        log.info("session finished ticket=%s outcome=%s steps=%s", ticket_id, outcome, steps)

    async def _emit_session(self, data: Any, ticket_id: str) -> None:
        await self.emit(data, correlation=ticket_id)

    async def stop(self) -> None:
        """Abandon in-flight work explicitly: a claimed ticket is escalated, for good."""
        self.stopping.set()
        self._work.set()
        session, ticket_id = self._session, self._current
        if session is not None and not session.done():
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await session
        if ticket_id is not None:
            state = (await self.store.load(ticket_id)).state
            if state.claimed_by == self.agent_id and state.status not in ("resolved", "escalated"):
                await self._escalate(ticket_id, STOPPED_REASON, 0)
        await self.adapter.close()

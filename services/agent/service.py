"""The agent service.

Follows its run's log (tickets and violations), claims a claimable ticket
(open, or an expired lease) with a lease, works it with its policy, verifies
recovery itself and resolves, or escalates with the reason. One session at a
time per instance; run more instances to work tickets in parallel — the
ticket subject's optimistic concurrency lets exactly one claim win.

On SIGTERM the in-flight session is cancelled and its ticket recorded
``escalated`` ("agent stopped mid-session"); escalated is final, so nothing
overwrites it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from events import AgentSessionFinished, AgentSessionStarted, TicketOpened, TicketPayload
from events.bus import ConcurrencyConflict, Delivered, Replay
from events.envelope import utcnow
from events.subjects import run_events
from projections.tickets import IllegalTransition, TicketState, TicketStatus, TicketStore
from projections.tickets.state import apply_event
from services.agent.policies import Policy, make_policy
from services.agent.session import Session
from services.agent.settings import AgentSettings
from services.agent.violations import ViolationTracker
from services.runtime import ServiceProcess
from subjects.base import Adapter
from subjects.registry import load_adapter

log = logging.getLogger(__name__)


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
        self._feed: Replay | None = None
        self._session: asyncio.Task[None] | None = None
        self._current: str | None = None

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

    async def main(self) -> None:
        self._feed = await self.bus.replay(run_events(self.run), self._on_event, follow=True)
        await self._feed.caught_up.wait()
        self.ready.set()
        try:
            while not self.stopping.is_set():
                ticket = self.next_claimable()
                if ticket is None:
                    self._work.clear()
                    with contextlib.suppress(TimeoutError):
                        # wake on new ticket events, and periodically for lease expiry
                        await asyncio.wait_for(self._work.wait(), 1.0)
                    continue
                if await self._claim(ticket):
                    self._current = ticket.ticket_id
                    self._session = asyncio.create_task(self._run_session(ticket.ticket_id))
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._session
                    self._current = None
        finally:
            await self._feed.stop()

    async def _claim(self, ticket: TicketState) -> bool:
        lease = utcnow() + timedelta(seconds=self.config.lease_s)
        try:
            await self.store.update(ticket.ticket_id, lambda t: t.claim(self.agent_id, self.policy.name, lease),
                                    attempts=1)
        except (ConcurrencyConflict, IllegalTransition) as exc:
            log.info("claim lost ticket=%s: %s", ticket.ticket_id, exc)
            # our view may lag the log: let the feed catch up before retrying
            self.tickets[ticket.ticket_id] = ticket.model_copy(update={"lease_until": lease,
                                                                        "status": TicketStatus.CLAIMED})
            return False
        log.info("claimed ticket=%s", ticket.ticket_id)
        return True

    async def _run_session(self, ticket_id: str) -> None:
        ticket = (await self.store.load(ticket_id)).state
        session = Session(bus=self.bus, run=self.run, agent=self.agent_id, adapter=self.adapter,
                          store=self.store, ticket=ticket, evidence=self.evidence.get(ticket_id, {}),
                          violations=self.violations, max_steps=self.config.max_steps)
        await self._emit_session(AgentSessionStarted(ticket_id=ticket_id, agent=self.agent_id,
                                                     policy=self.policy.name), ticket_id)
        outcome = await self.policy.work(session)
        if not outcome.remediated:
            await self._escalate(ticket_id, outcome.reason, session.steps)
            return
        await session.think(f"remedy applied; waiting up to {self.config.verify_timeout_s:.0f}s "
                            f"for {ticket.invariant} on {ticket.entity} to clear")
        if not await session.verify(self.config.verify_timeout_s):
            await self._escalate(ticket_id, f"verification failed: {ticket.invariant} on {ticket.entity} "
                                            f"still violated {self.config.verify_timeout_s:.0f}s after the remedy",
                                 session.steps)
            return
        evidence = {"cleared_after_seq": session.last_action_seq}
        await self.store.update(ticket_id, lambda t: t.verify(self.agent_id, evidence))
        await self.store.update(ticket_id, lambda t: t.resolve_by_agent(self.agent_id, "violation cleared"))
        await self._emit_session(AgentSessionFinished(ticket_id=ticket_id, outcome="resolved",
                                                      steps=session.steps), ticket_id)
        log.info("resolved ticket=%s steps=%s", ticket_id, session.steps)

    async def _escalate(self, ticket_id: str, reason: str, steps: int) -> None:
        try:
            await self.store.update(ticket_id, lambda t: t.escalate(reason, agent=self.agent_id))
        except IllegalTransition as exc:
            log.warning("could not escalate ticket=%s: %s", ticket_id, exc)
        await self._emit_session(AgentSessionFinished(ticket_id=ticket_id, outcome="escalated", steps=steps),
                                 ticket_id)
        log.info("escalated ticket=%s reason=%s", ticket_id, reason)

    async def _emit_session(self, data: Any, ticket_id: str) -> None:
        await self.emit(data, correlation=ticket_id)

    async def stop(self) -> None:
        """Abandon the in-flight session explicitly: its ticket is escalated, for good."""
        self.stopping.set()
        self._work.set()
        session, ticket_id = self._session, self._current
        if session is not None and not session.done() and ticket_id is not None:
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await session
            await self._escalate(ticket_id, "agent stopped mid-session (SIGTERM)", 0)
        await self.adapter.close()

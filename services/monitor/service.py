"""The monitor service.

Every ``interval_s`` (0.25 s) it observes the subject, records an
``obs.snapshot``, judges the invariants and records ``inv.violated`` /
``inv.cleared`` transitions. It also judges as soon as a ``workload.stats``
arrives, so a workload invariant changes within one stats interval rather than
waiting up to a tick: 0.25 s and judging on arrival are what lets a subject
detect a fault in its snapshots within half a second and in its workload
within a second. The two judge one after the other (a lock), never
interleaved. A new violation opens a ticket (or records a recurrence on the
ticket still open for it); a violation that clears while its ticket is still
unclaimed resolves that ticket as self-healed. Claimed tickets are the
agent's: the monitor never resolves them.

Crash safety: after judging, every tick *reconciles* tickets with the active
violations — an active violation episode with no ticket gets one, and an
unclaimed ticket whose violation is no longer active is self-healed — so a
crash between recording a transition and acting on it is repaired by the next
tick of the next instance. A failing tick (NATS briefly away) is logged and the
loop carries on.

Causation (see ``events/envelope.py``): ``obs.snapshot`` is a root; ``inv.*`` and
``inv.baseline`` are caused by the snapshot that showed them (``inv.*`` judged on a
stats arrival: by that ``workload.stats``); ``ticket.opened`` by its
``inv.violated`` (also when reconciliation opens it: the episode's violation, restored from the
log, else the snapshot); a self-healed ``ticket.resolved`` by the ``inv.cleared`` that cleared it
(the snapshot, if reconciliation finds a violation gone without one). ``ticket.recurred`` follows
the ticket's previous event like every other ticket event, so a ticket's story stays one chain.

Baseline: the monitor judges nothing before it has seen the subject whole
once - an observation that succeeded with every node and component ``up`` -
and records that as ``inv.baseline``; a subject still starting (a compose
``up`` whose nodes are not listening yet) is no incident. History from before
the baseline is dropped. If the subject never looks whole within
``OPLAB_MONITOR_BASELINE_TIMEOUT_S`` (60 s) the monitor judges anyway and
says so (``healthy: false``). A restarted monitor finds the baseline (or any
judgement) in the log and judges at once.

On start it replays its run's log: all ``inv.*`` and ``ticket.*`` events, and
only the last ``history_s`` of snapshots and workload stats (all that grace
periods need), so a restart stays fast however long the run has been going.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from datetime import datetime, timedelta

from pydantic_settings import BaseSettings, SettingsConfigDict

from events import (
    BaselineEstablished,
    InvariantCleared,
    InvariantViolated,
    ObsSnapshot,
    TicketOpened,
    TicketPayload,
    WorkloadStats,
    new_ticket_id,
)
from events.bus import Bus, ConcurrencyConflict
from events.envelope import Payload, utcnow
from events.replay import Delivered
from events.subjects import run_domain, run_type
from events.waiting import pause_unless
from services.monitor.judge import Active, Judge
from services.runtime import ServiceSettings, SubjectService
from subjects.contract import Observer, Violation
from tickets import TERMINAL, IllegalTransition, Ticket, TicketState, TicketStatus, TicketStore
from tickets.state import apply_event

log = logging.getLogger(__name__)


class MonitorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_MONITOR_", extra="ignore")
    interval_s: float = 0.25
    history_s: float = 30.0
    baseline_timeout_s: float = 60.0
    """Judge anyway after this long without seeing the subject whole (see the module doc)."""


class MonitorService(SubjectService[MonitorSettings]):
    name = "monitor"

    def __init__(self, bus: Bus, settings: ServiceSettings, *, config: MonitorSettings, subject: str,
                 observer: Observer) -> None:
        """Built by :func:`services.monitor.bootstrap.build` (in production and in tests alike)."""
        # the subject is what tickets are about; snapshots say it too
        super().__init__(bus, settings, config=config, subject=subject)
        self.observer = observer
        self.judge = Judge(self.observer.invariants(), self.config.history_s)
        self.store = TicketStore(bus, self.run)
        self.tickets: dict[str, TicketState] = {}
        self.baseline = False  # judging has begun in this run (by us or a predecessor)
        # per (invariant, entity): the ids of its latest inv.violated / inv.cleared, the causes of what follows
        self.violated_ids: dict[tuple[str, str], str] = {}
        self.cleared_ids: dict[tuple[str, str], str] = {}
        self._started = time.monotonic()
        self._restored = False
        self._judging = asyncio.Lock()  # a tick and a stats arrival judge one after the other

    # -- following the log ------------------------------------------------------

    async def _on_ticket(self, d: Delivered) -> None:
        data = d.event.data
        if isinstance(data, TicketPayload):
            self.tickets[data.ticket_id] = apply_event(self.tickets.get(data.ticket_id), data, d.event.time,
                                                       self.run)

    async def _on_violation(self, d: Delivered) -> None:
        if self._restored:
            return  # live inv.* events are our own: the judge already knows
        self.baseline = True  # anything a predecessor judged means it had begun (runs before inv.baseline too)
        self._restore(d.event.data, d)

    @functools.singledispatchmethod
    def _restore(self, data: Payload, d: Delivered) -> None:
        pass  # inv.baseline: the flag above is all it says

    @_restore.register
    def _restore_violated(self, data: InvariantViolated, d: Delivered) -> None:
        self.violated_ids[(data.invariant, data.entity)] = d.event.id
        self.cleared_ids.pop((data.invariant, data.entity), None)  # a clear of an earlier episode
        violation = Violation(data.invariant, data.entity, data.summary, data.evidence)
        self.judge.restore_active((data.invariant, data.entity), violation, data.first_seen)

    @_restore.register
    def _restore_cleared(self, data: InvariantCleared, d: Delivered) -> None:
        self.cleared_ids[(data.invariant, data.entity)] = d.event.id
        self.judge.restore_cleared((data.invariant, data.entity))

    async def _on_observation(self, d: Delivered) -> None:
        await self._take_observation(d.event.data, d)

    @functools.singledispatchmethod
    async def _take_observation(self, data: Payload, d: Delivered) -> None:
        pass

    @_take_observation.register
    async def _workload(self, data: WorkloadStats, d: Delivered) -> None:
        self.judge.add_workload(d.event.time, data)
        if self._restored and self.baseline:
            await self._judge_stats(data.ended_at or d.event.time, d.event.id)

    @_take_observation.register
    async def _snapshot(self, data: ObsSnapshot, d: Delivered) -> None:
        if not self._restored:  # once restored, each tick hands the judge its own snapshot
            self.judge.add_snapshot(data)

    def open_ticket_for(self, invariant: str, entity: str) -> TicketState | None:
        for state in self.tickets.values():
            if state.invariant == invariant and state.entity == entity and state.status not in TERMINAL:
                return state
        return None

    # -- the loop ---------------------------------------------------------------

    async def main(self) -> None:
        await self.ensure_run_subject(self.subject)
        since = utcnow() - timedelta(seconds=self.config.history_s)
        await self.follow(run_domain(self.run, "ticket"), self._on_ticket)
        await self.follow(run_domain(self.run, "inv"), self._on_violation)
        await self.follow(run_type(self.run, ObsSnapshot), self._on_observation, from_time=since)
        await self.follow(run_type(self.run, WorkloadStats), self._on_observation, from_time=since)
        self._restored = True
        self.ready.set()
        log.info("monitor restored", extra={"snapshots": len(self.judge.snapshots),
                                             "active": len(self.judge.active), "tickets": len(self.tickets)})
        loop = asyncio.get_running_loop()
        self._started = time.monotonic()
        next_tick = loop.time()
        try:
            while not self.stopping.is_set():
                try:
                    await self.tick()
                except (ConcurrencyConflict, IllegalTransition) as exc:
                    log.info("tick raced another writer", extra={"error": str(exc)})
                except Exception:
                    log.exception("tick failed; carrying on")
                next_tick += self.config.interval_s
                delay = max(0.0, next_tick - loop.time())
                if delay == 0.0:
                    next_tick = loop.time()
                await pause_unless(self.stopping, delay)
        finally:
            await self.observer.close()

    async def tick(self) -> None:
        snapshot = await self._observe()
        snap_event = self.event(snapshot)
        await self.bus.publish(snap_event)
        if not self.baseline and not await self._baseline(snapshot, snap_event.id):
            return
        async with self._judging:
            self.judge.add_snapshot(snapshot)
            await self._judge(snapshot.observed_at, snap_event.id)
            await self.reconcile(snap_event.id)

    async def _judge_stats(self, at: datetime, causation: str) -> None:
        """Judge on a workload interval's arrival (a failure is logged; the next tick reconciles)."""
        try:
            async with self._judging:
                await self._judge(at, causation)
        except (ConcurrencyConflict, IllegalTransition) as exc:
            log.info("judging stats raced another writer", extra={"error": str(exc)})
        except Exception:
            log.exception("judging stats failed; the next tick carries on")

    async def _judge(self, now: datetime, causation: str) -> None:
        """Evaluate the history as of ``now`` and record what changed, caused by ``causation``."""
        changes = self.judge.evaluate(now)
        for active in changes.started:
            await self._violated(active, causation)
        for active, at in changes.cleared:
            await self._cleared(active, at, causation)

    async def _baseline(self, snapshot: ObsSnapshot, causation: str) -> bool:
        """Whether judging may begin with this snapshot (recording ``inv.baseline`` when it does)."""
        waited = time.monotonic() - self._started
        healthy = _whole(snapshot)
        if not healthy and waited < self.config.baseline_timeout_s:
            return False
        detail = ("every node and component up" if healthy else
                  f"the subject never looked whole within {self.config.baseline_timeout_s:.0f}s: judging anyway")
        await self.emit(BaselineEstablished(healthy=healthy, waited_s=round(waited, 3), detail=detail),
                        causation=causation)
        (log.info if healthy else log.warning)("baseline established after %.1fs: %s", waited, detail)
        self.judge.forget_history()  # what a subject did while starting is no evidence
        self.baseline = True
        return True

    async def _observe(self) -> ObsSnapshot:
        """The observer's snapshot; an observer that raises (against its contract) is blindness too."""
        started = utcnow()
        try:
            return await self.observer.observe()
        except Exception as exc:
            log.exception("the observer raised instead of reporting a failed observation")
            return ObsSnapshot(subject=self.subject, ok=False, observed_at=started,
                               error=f"the observer raised {type(exc).__name__}: {exc}")

    async def reconcile(self, causation: str) -> None:
        """Make tickets agree with the active violations (repairs a crash mid-transition)."""
        for (invariant, entity), active in list(self.judge.active.items()):
            if self.open_ticket_for(invariant, entity) is None and not self._episode_ticketed(active):
                log.warning("active violation without a ticket: opening one",
                            extra={"invariant": invariant, "entity": entity})
                await self._open(active, self.violated_ids.get((invariant, entity), causation))
        for ticket in list(self.tickets.values()):
            if ticket.status == TicketStatus.OPEN and (ticket.invariant, ticket.entity) not in self.judge.active:
                await self._self_heal(ticket, "violation no longer active",
                                      self.cleared_ids.get((ticket.invariant, ticket.entity), causation))

    def _episode_ticketed(self, active: Active) -> bool:
        v = active.violation
        return any(t.invariant == v.invariant and t.entity == v.entity and t.first_seen == active.first_seen
                   for t in self.tickets.values())

    async def _violated(self, active: Active, causation: str) -> None:
        v = active.violation
        event = self.event(InvariantViolated(invariant=v.invariant, entity=v.entity, evidence=v.evidence,
                                             first_seen=active.first_seen, summary=v.summary),
                           correlation=f"{v.invariant}:{v.entity}", causation=causation)
        await self.bus.publish(event)
        self.violated_ids[(v.invariant, v.entity)] = event.id
        self.cleared_ids.pop((v.invariant, v.entity), None)  # a clear of an earlier episode
        log.info("violated", extra={"invariant": v.invariant, "entity": v.entity})
        existing = self.open_ticket_for(v.invariant, v.entity)
        if existing is not None:
            with contextlib.suppress(IllegalTransition):  # caused by the ticket's previous event (module doc)
                await self.store.update(existing.ticket_id, lambda t: t.recur(v.evidence))
            return
        await self._open(active, event.id)

    async def _open(self, active: Active, causation: str) -> None:
        v = active.violation
        ticket = Ticket.open(TicketOpened(
            ticket_id=new_ticket_id(), invariant=v.invariant, entity=v.entity,
            subject=self.subject, summary=v.summary, evidence=v.evidence,
            first_seen=active.first_seen), run=self.run)
        await self.store.save(ticket, causation=causation)
        self.tickets[ticket.ticket_id] = ticket.state
        log.info("ticket opened", extra={"ticket": ticket.ticket_id, "invariant": v.invariant, "entity": v.entity})

    async def _cleared(self, active: Active, at: datetime, causation: str) -> None:
        v = active.violation
        duration = max(0.0, (at - active.first_seen).total_seconds())
        event = self.event(InvariantCleared(invariant=v.invariant, entity=v.entity, first_seen=active.first_seen,
                                            violated_for_s=round(duration, 3)),
                           correlation=f"{v.invariant}:{v.entity}", causation=causation)
        await self.bus.publish(event)
        self.cleared_ids[(v.invariant, v.entity)] = event.id
        log.info("cleared", extra={"invariant": v.invariant, "entity": v.entity, "after_s": round(duration, 2)})
        ticket = self.open_ticket_for(v.invariant, v.entity)
        if ticket is not None and ticket.status == TicketStatus.OPEN:
            await self._self_heal(ticket, f"violation cleared after {duration:.1f}s before any agent claimed it",
                                  event.id)

    async def _self_heal(self, ticket: TicketState, note: str, causation: str) -> None:
        try:
            events = await self.store.update(ticket.ticket_id, lambda t: t.resolve_self_healed(note),
                                             causation=causation)
        except IllegalTransition:
            log.info("ticket claimed meanwhile; the agent verifies it", extra={"ticket": ticket.ticket_id})
            return
        for e in events:  # our view must not wait for the feed, or the next tick repeats this
            self.tickets[ticket.ticket_id] = apply_event(self.tickets[ticket.ticket_id], e.data, e.time, self.run)


def _whole(snapshot: ObsSnapshot) -> bool:
    """Observed, with every node and component up (a subject with no nodes counts once observed)."""
    return snapshot.ok and all(n.status == "up" for n in snapshot.nodes) and all(
        c.status == "up" for c in snapshot.components)

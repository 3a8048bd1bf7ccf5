"""The life of one fault once it is in effect: proving it, its TTL, and reverting it for sure.

A fault's life in the log: ``fault_requested``, then ``fault_injected``
(with its undo data) or ``fault_failed(stage="inject")``; then
``fault_effective`` or ``fault_failed(stage="verify")``; finally
``fault_reverted`` (reason ``ttl``, ``explicit`` or ``shutdown``; ``changed``
False when the revert found nothing left to undo).

Reverts never give up silently. A failed revert is recorded once as
``fault_failed(stage="revert")``; the fault stays active and, on the TTL and
adoption paths, the revert is retried with backoff (0.5 s doubling up to
``OPLAB_CHAOS_REVERT_RETRY_MAX_S``, 5 s) until it works or the service stops.

Causation: every event of a fault after its injection (``fault_effective``,
``fault_adopted``, ``fault_reverted``, a failed verify or revert) is caused by its
``fault_injected`` (kept in the ledger, also for adopted faults).

:class:`FaultLifecycle` is the base of the chaos service: the commands
(:mod:`services.chaos.commands`) and the recovery at start (:mod:`services.chaos.recovery`)
build on it. Everything that changes the ledger or the subject holds ``_lock``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_result, wait_exponential

from events import FaultEffective, FaultFailed, FaultReverted, Payload
from events.bus import Bus
from events.waiting import WaitTimeout, pause_unless, wait_until
from services.chaos.ledger import ActiveFault, Ledger
from services.chaos.requests import describe
from services.chaos.settings import ChaosSettings
from services.runtime import ServiceSettings, SubjectService
from subjects.contract import SubjectError
from subjects.contract.fault_kit import FaultKit, Injection

log = logging.getLogger(__name__)


class FaultLifecycle(SubjectService[ChaosSettings]):
    """The faults this service holds (``ledger``) and the tasks working on them.

    Per active fault at most one timer task (``_timers``: its TTL expiry, then its revert retries)
    and at most one confirmation task (``_confirms``); a revert that works cancels the fault's timer.
    """

    kit: FaultKit  # the run's subject's fault kit: set by the service before anything runs

    def __init__(self, bus: Bus, settings: ServiceSettings, *, config: ChaosSettings, subject: str) -> None:
        super().__init__(bus, settings, config=config, subject=subject)
        self.ledger = Ledger()
        self._timers: dict[str, asyncio.Task[None]] = {}  # per fault: TTL expiry, then revert retries
        self._confirms: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    # -- tasks of one fault ------------------------------------------------------

    def _start_ttl(self, active: ActiveFault, seconds: float) -> None:
        """Revert the fault (reason ``ttl``) in ``seconds``, retrying if that revert fails."""
        self._timers[active.fault_id] = asyncio.create_task(self._expire(active, seconds),
                                                            name=f"ttl-{active.fault_id}")

    def _start_retries(self, active: ActiveFault, reason: str) -> None:
        """Retry a revert that just failed (recorded by the caller) until it works or the service stops."""
        self._timers[active.fault_id] = asyncio.create_task(self._retry_revert(active, reason),
                                                            name=f"revert-{active.fault_id}")

    def _start_confirm(self, active: ActiveFault, injection: Injection, params: BaseModel) -> None:
        """Look for the fault's effect in the background (see ``_confirm``)."""
        confirm = asyncio.create_task(self._confirm(active, injection, params), name=f"confirm-{active.fault_id}")
        self._confirms.add(confirm)
        confirm.add_done_callback(self._confirms.discard)

    def _cancel_tasks(self) -> None:
        """Cancel every timer and confirmation: the faults stay in effect, on record for a successor."""
        for task in [*self._timers.values(), *self._confirms]:
            task.cancel()

    async def _confirm(self, active: ActiveFault, injection: Injection, params: BaseModel) -> None:
        """Poll the real system (every 0.1 s, up to ``effective_timeout_s``) for the fault's effect and
        record it, or record why it was not seen; a fault reverted meanwhile is confirmed by nobody."""
        fault = self.kit.fault(active.kind)
        assert fault is not None
        evidence: dict[str, Any] | None = None
        error = "no evidence yet"

        async def settled() -> bool:
            """Whether the effect is seen (``evidence``), or the fault is gone: nothing left to confirm."""
            nonlocal evidence, error
            if active.fault_id not in self.ledger.active:
                return True
            try:
                evidence = await fault.effective(injection, params)
            except SubjectError as exc:
                error = str(exc)
                return False
            error = "no evidence yet"
            return evidence is not None  # any evidence counts, even an empty one

        try:
            await wait_until(settled, timeout=self.config.effective_timeout_s, interval=0.1,
                             what=f"fault {active.fault_id} effective")
        except WaitTimeout:
            reason = f"not effective within {self.config.effective_timeout_s}s: {error}"
            await self._record(FaultFailed(fault_id=active.fault_id, stage="verify", reason=reason),
                               correlation=active.fault_id, causation=active.injected_id)
            return
        if evidence is not None:
            active.effective = True
            await self._record(FaultEffective(fault_id=active.fault_id, evidence=evidence),
                               correlation=active.fault_id, causation=active.injected_id)

    async def _expire(self, active: ActiveFault, ttl: float) -> None:
        await asyncio.sleep(ttl)  # the TTL itself: a timer, not a synchronisation
        async with self._lock:
            if active.fault_id not in self.ledger.active or await self._revert(active, "ttl"):
                return
        await self._retry_revert(active, "ttl")

    async def _retry_revert(self, active: ActiveFault, reason: str) -> None:
        """Retry a failed revert with backoff until it works, the fault is gone, or the service stops.

        The revert just failed (recorded once by the caller), so the first retry comes after
        ``revert_retry_first_s``, and each pause doubles up to ``revert_retry_max_s``. The service's
        stop cuts a pause short and ends the retries: the successor adopts the fault."""

        async def settled() -> bool:
            """Whether there is nothing more to do (reverted, gone, or stopping): no retry after it."""
            if self.stopping.is_set():
                return True
            async with self._lock:
                return active.fault_id not in self.ledger.active or await self._revert(
                    active, reason, record_failure=False)

        first = self.config.revert_retry_first_s
        if await self._interrupted(first):
            return
        # after retry n (tenacity's attempt n) fails, pause first * 2^n, at most max: 2*first, 4*first, ...
        retrying = AsyncRetrying(retry=retry_if_result(lambda done: not done), sleep=self._interrupted,
                                 wait=wait_exponential(multiplier=2 * first, max=self.config.revert_retry_max_s))
        await retrying(settled)

    # -- reverting and recording ---------------------------------------------------

    async def _revert(self, active: ActiveFault, reason: str, *, record_failure: bool = True) -> bool:
        """Revert and record; must hold ``_lock``. A failed revert keeps the fault active; returns success."""
        fault = self.kit.fault(active.kind)
        try:
            if fault is None:
                raise SubjectError(f"this chaos service cannot revert kind {active.kind!r}")
            result = await fault.revert(active.undo)
        except Exception as exc:  # a subject failure or a bug: the fault stays active either way
            log.error("revert failed", extra={"fault": active.fault_id, "reason": reason, "error": describe(exc)})
            if record_failure:
                await self._record(FaultFailed(fault_id=active.fault_id, stage="revert", reason=describe(exc)),
                                   correlation=active.fault_id, causation=active.injected_id)
            return False
        reverted = FaultReverted(fault_id=active.fault_id, reason=reason, detail=result.detail,  # type: ignore[arg-type]
                                 changed=result.changed)
        # the ledger first: whoever sees the record and asks `list` must not find the fault still there
        self.ledger.apply(reverted)
        await self._record(reverted, correlation=active.fault_id, causation=active.injected_id)
        timer = self._timers.pop(active.fault_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        log.info("fault reverted", extra={"fault": active.fault_id, "reason": reason, "changed": result.changed})
        return True

    async def _record(self, data: Payload, **kwargs: Any) -> None:
        """Publish a fact; if NATS refuses, log it loudly and carry on (the action already happened).
        The ledger follows it either way: it holds what this service did."""
        try:
            await self.emit(data, **kwargs)
        except Exception:
            log.exception("could not record an event",
                          extra={"event_type": data.TYPE, "correlation": kwargs.get("correlation", "")})
        self.ledger.apply(data)

    async def _interrupted(self, seconds: float) -> bool:
        """A back-off pause of ``seconds``, cut short if the service stops; whether it is stopping."""
        return await pause_unless(self.stopping, seconds)

"""What a chaos service takes over at start: the faults and requests a predecessor left behind.

Hand-over. Stopping the service (SIGTERM: ``oplab restart chaos``, ``docker
compose restart chaos``) reverts nothing: the faults stay in effect and in the
log, and the next chaos service adopts them. Only an injection the log does not
carry (its record failed and so did its undo) is reverted on the way out, as no
successor could know of it. The lab going down reverts everything first
(``oplab down`` sends ``revert {"all": true, "reason": "shutdown"}``; a
compose ``down`` removes the subject's containers with their faults).

Crash safety. At start the service folds this run's ``chaos.*`` log:
- faults still active (injected, never reverted) are adopted
  (``fault_adopted``): each is reverted when the TTL it was injected with
  runs out (at once if it already has), or when asked; one whose effect was not
  yet confirmed is confirmed by the successor;
- requests with no outcome at all were cut off mid-injection. Each gets
  ``fault_failed(stage="inject", reason="chaos stopped mid-injection; undo
  unknown")`` so the log is honest. If the request named an explicit target
  and the fault can derive its undo from the target alone - it offers
  ``undo_for_target(target, params) -> dict | None`` (for a killed process:
  make sure it runs) - that undo is applied too, and the reason says so.

A cut-off request's ``fault_failed`` is caused by its ``fault_requested``; ``fault_adopted``
by the fault's ``fault_injected``.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from events import FaultAdopted, FaultFailed, FaultRequested
from events.envelope import utcnow
from events.replay import Delivered
from events.subjects import run_domain
from services.chaos.ledger import ActiveFault
from services.chaos.lifecycle import FaultLifecycle
from services.chaos.requests import describe
from subjects.contract import SubjectError
from subjects.contract.fault_kit import Injection

log = logging.getLogger(__name__)

MID_INJECTION = "chaos stopped mid-injection; undo unknown"


class FaultRecovery(FaultLifecycle):
    """Settles what the log says a predecessor left; run once, before the service takes commands."""

    async def _recover(self) -> None:
        """Take over what a previous instance left: settle cut-off injections, adopt active faults."""

        async def fold(d: Delivered) -> None:
            self.ledger.apply(d.event.data, d.event.id)

        await self.bus.replay(run_domain(self.run, "chaos"), fold, on_invalid=self.bus.rejecter(self.name))
        async with self._lock:
            for requested in list(self.ledger.pending.values()):
                await self._settle_cut_off(requested)
            for fault in list(self.ledger.active.values()):
                await self._adopt(fault)

    async def _adopt(self, active: ActiveFault) -> None:
        """Take over a fault a predecessor left in effect; must hold ``_lock``."""
        remaining = (active.expires_at - utcnow()).total_seconds()
        if remaining <= 0:
            log.info("fault left by a previous instance is past its TTL",
                     extra={"fault": active.fault_id, "kind": active.kind})
            if not await self._revert(active, "ttl"):
                self._start_retries(active, "ttl")
            return
        await self._record(FaultAdopted(fault_id=active.fault_id, expires_at=active.expires_at),
                           correlation=active.fault_id, causation=active.injected_id)
        log.info("fault adopted", extra={"fault": active.fault_id, "kind": active.kind, "target": active.target,
                                         "remaining_s": round(remaining, 1)})
        self._start_ttl(active, remaining)
        fault = self.kit.fault(active.kind)
        if active.effective or fault is None:
            return
        try:
            params = fault.params_model.model_validate(active.params)
        except ValidationError:
            return  # the predecessor validated them; a kit that changed since cannot confirm them
        self._start_confirm(active, Injection(active.target, active.undo), params)

    async def _settle_cut_off(self, requested: FaultRequested) -> None:
        """Record a request a crash cut off mid-injection; undo it where the target alone allows."""
        reason = MID_INJECTION
        fault = self.kit.fault(requested.kind)
        if requested.target and fault is not None:
            if (other := self.ledger.on_target(requested.target)) is not None:
                reason += f"; target {requested.target} has active fault {other.fault_id}, reverted next"
            else:
                try:
                    undo = fault.undo_for_target(requested.target, fault.params_model.model_validate(requested.params))
                    if undo is not None:
                        reason += f"; reverted from its target: {(await fault.revert(undo)).detail}"
                except (SubjectError, ValidationError) as exc:
                    reason += f"; reverting from its target failed: {describe(exc)}"
        log.warning("request cut off mid-injection settled",
                    extra={"fault": requested.fault_id, "kind": requested.kind, "reason": reason})
        await self._record(FaultFailed(fault_id=requested.fault_id, stage="inject", reason=reason),
                           correlation=requested.fault_id, causation=self.ledger.requested_ids.get(requested.fault_id))
        self.ledger.pending.pop(requested.fault_id, None)

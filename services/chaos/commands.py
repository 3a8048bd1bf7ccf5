"""The chaos service's commands (NATS micro service ``chaos``; JSON in, JSON out).

- ``cmd.chaos.inject`` ``{"kind", "target"?, "ttl_s"?, "params"?, "request_id"?, "causation"?}`` →
  ``{"fault": {...}}`` (``causation``: the id of the event that asked for it, recorded on ``fault_requested``);
  a ``request_id`` seen before is answered with that request's fault (``"repeated": true``),
  injecting nothing: a requester that died before it heard the answer may simply ask again
- ``cmd.chaos.revert`` ``{"fault_id"}`` (or ``{"all": true}``; ``"reason": "shutdown"`` when the lab
  goes down) → ``{"reverted": [ids], "failed": [...]}``
- ``cmd.chaos.list`` → ``{"faults": [...], "kinds": [...], "targets": [...]}``

Every fault has a TTL and an undo. Refusals (unknown kind or target, bad
parameters, a second fault on a busy target, an unknown fault id to revert)
are 400 errors with a clear description and inject nothing. A subject's
failure is a 500, or a 503 while the service stops (the caller retries, with
the same request id, against the successor).

Every request ends in a terminal record: an injection refused after the fact
(the target it resolved to already has a fault) is undone and recorded as
``fault_failed(stage="inject")``. Causation: ``fault_requested`` is caused by
what the inject command names as its ``causation`` (the director's
``chapter_started``), else it is a root; ``fault_injected`` and a failed
injection by the ``fault_requested``.

Residual window: the injection's effect and its ``fault_injected`` record are
not atomic. If publishing ``fault_injected`` fails, the injection is undone
at once in-process and recorded as ``fault_failed(stage="inject")`` (if that
undo fails too, the fault is held in memory and its revert retried). But if
the process dies (SIGKILL, OOM, power) after the subject was changed and
before ``fault_injected`` is stored, the undo data is lost: the next start
records the failure and repairs only what ``undo_for_target`` can derive
(:mod:`services.chaos.recovery`). Anything else stays broken until an
operator (the monitor will see it) fixes it. The window is one publish round trip.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from nats.micro.request import Request, ServiceError
from pydantic import ValidationError

from events import Event, FaultFailed, FaultInjected, FaultRequested, FaultReverted, new_fault_id
from events.envelope import utcnow
from services.chaos.ledger import ActiveFault
from services.chaos.lifecycle import FaultLifecycle
from services.chaos.requests import InjectRequest, RevertRequest, describe
from subjects.contract import RefusedError, SubjectError
from subjects.contract.fault_kit import Fault

log = logging.getLogger(__name__)

Action = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class FaultCommands(FaultLifecycle):
    """Inject, revert and list: each command's body in, its answer out (see the module docstring)."""

    async def _cmd_inject(self, req: Request) -> None:
        await self._answer(req, self.inject)

    async def _cmd_revert(self, req: Request) -> None:
        await self._answer(req, self.revert)

    async def _cmd_list(self, req: Request) -> None:
        await self._answer(req, lambda _body: self.listing())

    async def _answer(self, req: Request, action: Action) -> None:
        """Run ``action`` on the request's JSON body and respond with its answer, or with the error
        (400 a bad body or a refusal; 500 a subject's failure; 503 the same while stopping)."""
        try:
            body = json.loads(req.data or b"{}")
            result = await action(body)
        except (ValueError, ValidationError, RefusedError) as exc:
            raise ServiceError("400", describe(exc)) from exc
        except SubjectError as exc:
            # stopping is not a failure: a caller retries (the same request id) against the successor
            raise ServiceError("503" if self.stopping.is_set() else "500", str(exc)) from exc
        await req.respond(json.dumps(result).encode())

    async def listing(self) -> dict[str, Any]:
        """The active faults, the kit's fault kinds and its targets (the kit refreshed first)."""
        await self.kit.refresh()
        return {"faults": [f.as_dict() for f in self.ledger.active.values()],
                "kinds": [{"kind": f.kind, "description": f.description, "default_ttl_s": f.default_ttl_s}
                          for f in self.kit.faults()],
                "targets": self.kit.targets()}

    async def inject(self, body: dict[str, Any]) -> dict[str, Any]:
        """Inject one fault and answer with it as held (or answer a repeated request with its fault).

        Refusals raise ``RefusedError`` or ``ValidationError`` before anything is recorded or touched;
        once ``fault_requested`` is on record, every path records the request's outcome."""
        request = InjectRequest.model_validate(body)
        await self.kit.refresh()
        fault = self.kit.fault(request.kind)
        if fault is None:
            known = ", ".join(f.kind for f in self.kit.faults())
            raise RefusedError(f"unknown fault kind {request.kind!r}; known: {known}")
        if request.target is not None and request.target not in self.kit.targets():
            raise RefusedError(f"target {request.target!r} is outside the lab; targets: "
                               f"{', '.join(self.kit.targets())}")
        params = fault.params_model.model_validate(request.params)
        ttl = request.ttl_s or fault.default_ttl_s
        if ttl > self.config.max_ttl_s:
            raise RefusedError(f"ttl_s {ttl} exceeds the maximum {self.config.max_ttl_s}")
        async with self._lock:
            if self.stopping.is_set():
                raise SubjectError("the chaos service is stopping")
            if request.request_id is not None and (seen := self.ledger.requests.get(request.request_id)):
                return self._repeated(seen)
            # resolve the target first: a conflict is refused with nothing injected, and a
            # request cut off by a crash names what it was about to break
            target = await fault.resolve_target(request.target)
            if target is not None and (busy := self.ledger.on_target(target)):
                raise RefusedError(f"target {target} already has fault {busy.fault_id} "
                                   f"({busy.kind}); revert it first")
            fault_id = new_fault_id()
            requested = self.event(FaultRequested(fault_id=fault_id, kind=fault.kind, target=target,
                                                  params=params.model_dump(), ttl_s=ttl,
                                                  request_id=request.request_id),
                                   correlation=fault_id, causation=request.causation)
            await self.bus.publish(requested)  # fails before anything is touched, or is on record
            self.ledger.apply(requested.data)
            try:
                injection = await fault.inject(target, params)
            except Exception as exc:  # refused, failed, or a bug: in every case the request gets its outcome
                why = str(exc) if isinstance(exc, SubjectError) else f"unexpected error: {exc!r}"
                await self._record(FaultFailed(fault_id=fault_id, stage="inject", reason=why),
                                   correlation=fault_id, causation=requested.id)
                if isinstance(exc, SubjectError):
                    raise
                raise SubjectError(f"{fault.kind}: {why}") from exc
            expires_at = utcnow() + timedelta(seconds=ttl)
            injected = FaultInjected(fault_id=fault_id, kind=fault.kind, target=injection.target,
                                     params=params.model_dump(), undo=injection.undo, expires_at=expires_at)
            if (busy := self.ledger.on_target(injection.target)) is not None:
                await self._abandon(requested, fault, injected,
                                    f"target {injection.target} already has fault {busy.fault_id}")
                raise RefusedError(f"target {injection.target} already has fault {busy.fault_id} "
                                   f"({busy.kind}); the injection was abandoned")
            injected_event = self.event(injected, correlation=fault_id, causation=requested.id)
            try:
                await self.bus.publish(injected_event)
            except Exception as exc:  # the log would not know how to undo it: undo it now
                await self._abandon(requested, fault, injected, f"could not record the injection: {exc!r}",
                                    maybe_recorded=True)
                raise SubjectError(f"{fault.kind} on {injection.target}: could not record the injection, "
                                   "so it was undone") from exc
            self.ledger.apply(injected, injected_event.id)
            active = self.ledger.active[fault_id]
            self._start_ttl(active, ttl)
        self._start_confirm(active, injection, params)
        log.info("fault injected", extra={"fault": fault_id, "kind": fault.kind, "target": injection.target,
                                          "ttl_s": ttl})
        return {"fault": active.as_dict()}

    def _repeated(self, seen: FaultRequested) -> dict[str, Any]:
        """The answer to a request already made: its fault as it stands, nothing injected."""
        active = self.ledger.active.get(seen.fault_id)
        fault = active.as_dict() if active is not None else {
            "fault_id": seen.fault_id, "kind": seen.kind, "target": seen.target, "params": seen.params,
            "active": False}
        return {"fault": fault, "repeated": True}

    async def _abandon(self, requested: Event, fault: Fault, injected: FaultInjected, why: str, *,
                       maybe_recorded: bool = False) -> None:
        """Undo an injection that must not stand and record it as failed; must hold ``_lock``.

        If the undo fails too, the fault is really in effect: it is held as
        active in memory (listed, reverted at shutdown) and its revert retried.
        ``maybe_recorded``: the ``fault_injected`` publish failed, yet the log may hold it (the
        acknowledgement was lost); a successful undo is then also recorded as reverted
        (``abandoned``), or the log would read the fault as in effect until a successor's TTL.
        """
        fault_id = injected.fault_id
        undone = False
        try:
            detail = (await fault.revert(injected.undo)).detail
        except Exception as exc:
            reason = f"{why}; undoing it failed ({describe(exc)}), retrying"
            active = ActiveFault(fault_id, injected.kind, injected.target, dict(injected.params),
                                 dict(injected.undo), injected.expires_at)
            self.ledger.track(active)
            self._start_retries(active, "explicit")
        else:
            reason, undone = f"{why}; undone ({detail})", True
        log.warning("injection abandoned", extra={"fault": fault_id, "reason": reason})
        await self._record(FaultFailed(fault_id=fault_id, stage="inject", reason=reason),
                           correlation=fault_id, causation=requested.id)
        if maybe_recorded and undone:
            await self._record(FaultReverted(fault_id=fault_id, reason="abandoned", detail=reason, changed=True),
                               correlation=fault_id, causation=requested.id)

    async def revert(self, body: dict[str, Any]) -> dict[str, Any]:
        """Revert one active fault (its failure raises: the fault stays active) or all of them (the
        failures are listed in the answer); an unknown fault id is refused."""
        request = RevertRequest.model_validate(body)
        if not request.all and not request.fault_id:
            raise RefusedError('bad request: give "fault_id" or "all": true')
        async with self._lock:
            if request.all:
                targets = list(self.ledger.active.values())
            elif request.fault_id in self.ledger.active:
                targets = [self.ledger.active[request.fault_id]]
            else:
                active = ", ".join(self.ledger.active) or "none"
                raise RefusedError(f"no active fault {request.fault_id!r} (active: {active})")
            outcomes = [(f, await self._revert(f, request.reason)) for f in targets]
        failed = [f.fault_id for f, ok in outcomes if not ok]
        if failed and not request.all:
            raise SubjectError(f"revert of {failed[0]} failed (recorded as chaos.fault_failed); "
                               "the fault is still active")
        return {"reverted": [f.fault_id for f, ok in outcomes if ok], "failed": failed}

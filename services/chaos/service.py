"""The chaos service.

Commands (NATS micro service ``chaos``; JSON in, JSON out):
- ``cmd.chaos.inject`` ``{"kind", "target"?, "ttl_s"?, "params"?, "request_id"?, "causation"?}`` →
  ``{"fault": {...}}`` (``causation``: the id of the event that asked for it, recorded on ``fault_requested``);
  a ``request_id`` seen before is answered with that request's fault (``"repeated": true``),
  injecting nothing: a requester that died before it heard the answer may simply ask again
- ``cmd.chaos.revert`` ``{"fault_id"}`` (or ``{"all": true}``; ``"reason": "shutdown"`` when the lab
  goes down) → ``{"reverted": [ids], "failed": [...]}``
- ``cmd.chaos.list`` → ``{"faults": [...], "kinds": [...], "targets": [...]}``

Every fault has a TTL and an undo. Refusals (unknown kind or target, bad
parameters, a second fault on a busy target, an unknown fault id to revert)
are 400 errors with a clear description and inject nothing.

A fault's life in the log: ``fault_requested``, then ``fault_injected``
(with its undo data) or ``fault_failed(stage="inject")``; then
``fault_effective`` or ``fault_failed(stage="verify")``; finally
``fault_reverted`` (reason ``ttl``, ``explicit`` or ``shutdown``; ``changed``
False when the revert found nothing left to undo). Every request ends in a
terminal record: an injection refused after the fact (the target it resolved
to already has a fault) is undone and recorded as ``fault_failed(stage="inject")``.

Reverts never give up silently. A failed revert is recorded once as
``fault_failed(stage="revert")``; the fault stays active and, on the TTL and
adoption paths, the revert is retried with backoff (0.5 s doubling up to
``OPLAB_CHAOS_REVERT_RETRY_MAX_S``, 5 s) until it works or the service stops.

Hand-over. Stopping the service (SIGTERM: ``oplab restart chaos``, ``docker
compose restart chaos``) reverts nothing: the faults stay in effect and in the
log, and the next chaos service adopts them. Only an injection the log does not
carry (its record failed and so did its undo) is reverted on the way out, as no
successor could know of it. The lab going down reverts everything first
(``oplab down`` sends ``revert {"all": true, "reason": "shutdown"}``; a
compose ``down`` removes the subject's containers with their faults).

Causation: ``fault_requested`` is caused by what the inject command names as its
``causation`` (the director's ``chapter_started``), else it is a root;
``fault_injected`` and a failed injection by the ``fault_requested``; every later
event of a fault (``fault_effective``, ``fault_adopted``, ``fault_reverted``, a failed
verify or revert) by its ``fault_injected`` (kept in the ledger, also for adopted faults).

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

Residual window: the injection's effect and its ``fault_injected`` record are
not atomic. If publishing ``fault_injected`` fails, the injection is undone
at once in-process and recorded as ``fault_failed(stage="inject")`` (if that
undo fails too, the fault is held in memory and its revert retried). But if
the process dies (SIGKILL, OOM, power) after the subject was changed and
before ``fault_injected`` is stored, the undo data is lost: the next start
records the failure and repairs only what ``undo_for_target`` can derive.
Anything else stays broken until an operator (the monitor will see it) fixes
it. The window is one publish round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any, Literal

from nats.micro import add_service
from nats.micro.request import Request, ServiceError
from nats.micro.service import Service
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import (
    Event,
    FaultAdopted,
    FaultEffective,
    FaultFailed,
    FaultInjected,
    FaultRequested,
    FaultReverted,
    Payload,
    new_fault_id,
)
from events.bus import Delivered
from events.envelope import utcnow
from events.subjects import command, run_domain
from services.chaos.ledger import ActiveFault, Ledger
from services.runtime import ServiceProcess
from services.runtime.subject import role_of
from subjects.contract import RefusedError, SubjectError
from subjects.contract.fault_kit import Fault, FaultKit, Injection
from subjects.registry import SubjectSettings

log = logging.getLogger(__name__)

MID_INJECTION = "chaos stopped mid-injection; undo unknown"


class ChaosSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_CHAOS_", extra="ignore")
    max_ttl_s: float = 3600.0
    effective_timeout_s: float = 5.0
    revert_retry_first_s: float = Field(default=0.5, gt=0)
    revert_retry_max_s: float = Field(default=5.0, gt=0)


class InjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    target: str | None = None
    ttl_s: float | None = Field(default=None, gt=0)
    params: dict[str, Any] = {}
    request_id: str | None = Field(default=None, min_length=1, max_length=200)
    causation: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")  # an event id, nothing else


class RevertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fault_id: str | None = None
    all: bool = False
    reason: Literal["explicit", "shutdown"] = "explicit"


class ChaosService(ServiceProcess):
    name = "chaos"

    def __init__(self, bus, settings, kit: FaultKit | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(bus, settings)
        self.config = ChaosSettings()
        self.subject = SubjectSettings().subject
        self.kit = kit or role_of(self.subject, lambda s: s.fault_kit())
        self.ledger = Ledger()
        self._timers: dict[str, asyncio.Task[None]] = {}  # per fault: TTL expiry, then revert retries
        self._confirms: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._micro: Service | None = None

    async def main(self) -> None:
        await self.ensure_run_subject(self.subject)
        await self._recover()
        self._micro = await add_service(self.bus.nc, name="chaos", version="0.1.0",
                                        description="Inject, list and revert faults")
        for verb, handler in (("inject", self._cmd_inject), ("revert", self._cmd_revert),
                              ("list", self._cmd_list)):
            await self._micro.add_endpoint(name=verb, subject=command("chaos", verb, self.settings.command_scope),
                                            handler=handler)
        await self.bus.nc.flush()  # ready means the server routes commands to us
        self.ready.set()
        await self.stopping.wait()

    async def stop(self) -> None:
        """Hand the faults over: the next chaos service adopts what the log carries."""
        self.stopping.set()  # retry loops end; nothing new starts
        if self._micro is not None:
            await self._micro.stop()
        async with self._lock:  # an injection in flight ends (on record, or undone) first
            for fault in [f for f in self.ledger.active.values() if f.fault_id in self.ledger.unrecorded]:
                await self._revert(fault, "shutdown")  # no successor could know of it
            handed = [f"{f.fault_id} ({f.kind} on {f.target})" for f in self.ledger.active.values()]
        if handed:
            log.info("handing over %d active fault(s) to the next chaos service: %s", len(handed), ", ".join(handed))
        for task in [*self._timers.values(), *self._confirms]:
            task.cancel()
        await self.kit.close()
        await super().stop()

    # -- recovery ---------------------------------------------------------------

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
            log.info("fault left by a previous instance is past its TTL fault=%s kind=%s",
                     active.fault_id, active.kind)
            if not await self._revert(active, "ttl"):
                self._timers[active.fault_id] = asyncio.create_task(self._retry_revert(active, "ttl"))
            return
        await self._record(FaultAdopted(fault_id=active.fault_id, expires_at=active.expires_at),
                           correlation=active.fault_id, causation=active.injected_id)
        log.info("adopted fault=%s kind=%s target=%s remaining=%.1fs",
                 active.fault_id, active.kind, active.target, remaining)
        self._timers[active.fault_id] = asyncio.create_task(self._expire(active, remaining),
                                                            name=f"ttl-{active.fault_id}")
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
                    reason += f"; reverting from its target failed: {_describe(exc)}"
        log.warning("fault %s (%s) was cut off mid-injection: %s", requested.fault_id, requested.kind, reason)
        await self._record(FaultFailed(fault_id=requested.fault_id, stage="inject", reason=reason),
                           correlation=requested.fault_id, causation=self.ledger.requested_ids.get(requested.fault_id))
        self.ledger.pending.pop(requested.fault_id, None)

    # -- commands ---------------------------------------------------------------

    async def _cmd_inject(self, req: Request) -> None:
        await self._answer(req, self.inject)

    async def _cmd_revert(self, req: Request) -> None:
        await self._answer(req, self.revert)

    async def _cmd_list(self, req: Request) -> None:
        await self._answer(req, lambda _body: self.listing())

    async def _answer(self, req: Request, action) -> None:  # type: ignore[no-untyped-def]
        try:
            body = json.loads(req.data or b"{}")
            result = await action(body)
        except (ValueError, ValidationError, RefusedError) as exc:
            raise ServiceError("400", _describe(exc)) from exc
        except SubjectError as exc:
            # stopping is not a failure: a caller retries (the same request id) against the successor
            raise ServiceError("503" if self.stopping.is_set() else "500", str(exc)) from exc
        await req.respond(json.dumps(result).encode())

    async def listing(self) -> dict[str, Any]:
        await self.kit.refresh()
        return {"faults": [f.as_dict() for f in self.ledger.active.values()],
                "kinds": [{"kind": f.kind, "description": f.description, "default_ttl_s": f.default_ttl_s}
                          for f in self.kit.faults()],
                "targets": self.kit.targets()}

    async def inject(self, body: dict[str, Any]) -> dict[str, Any]:
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
                await self._abandon(requested, fault, injected, f"could not record the injection: {exc!r}")
                raise SubjectError(f"{fault.kind} on {injection.target}: could not record the injection, "
                                   "so it was undone") from exc
            self.ledger.apply(injected, injected_event.id)
            active = self.ledger.active[fault_id]
            self._timers[fault_id] = asyncio.create_task(self._expire(active, ttl), name=f"ttl-{fault_id}")
        self._start_confirm(active, injection, params)
        log.info("injected fault=%s kind=%s target=%s ttl=%s", fault_id, fault.kind, injection.target, ttl)
        return {"fault": active.as_dict()}

    def _repeated(self, seen: FaultRequested) -> dict[str, Any]:
        """The answer to a request already made: its fault as it stands, nothing injected."""
        active = self.ledger.active.get(seen.fault_id)
        fault = active.as_dict() if active is not None else {
            "fault_id": seen.fault_id, "kind": seen.kind, "target": seen.target, "params": seen.params,
            "active": False}
        return {"fault": fault, "repeated": True}

    async def _abandon(self, requested: Event, fault: Fault, injected: FaultInjected, why: str) -> None:
        """Undo an injection that must not stand and record it as failed; must hold ``_lock``.

        If the undo fails too, the fault is really in effect: it is held as
        active in memory (listed, reverted at shutdown) and its revert retried.
        """
        fault_id = injected.fault_id
        try:
            detail = (await fault.revert(injected.undo)).detail
        except Exception as exc:
            reason = f"{why}; undoing it failed ({_describe(exc)}), retrying"
            active = ActiveFault(fault_id, injected.kind, injected.target, dict(injected.params),
                                 dict(injected.undo), injected.expires_at)
            self.ledger.track(active)
            self._timers[fault_id] = asyncio.create_task(self._retry_revert(active, "explicit"))
        else:
            reason = f"{why}; undone ({detail})"
        log.warning("abandoned injection fault=%s: %s", fault_id, reason)
        await self._record(FaultFailed(fault_id=fault_id, stage="inject", reason=reason),
                           correlation=fault_id, causation=requested.id)

    async def revert(self, body: dict[str, Any]) -> dict[str, Any]:
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

    # -- lifecycle of one fault -------------------------------------------------

    def _start_confirm(self, active: ActiveFault, injection: Injection, params: BaseModel) -> None:
        confirm = asyncio.create_task(self._confirm(active, injection, params), name=f"confirm-{active.fault_id}")
        self._confirms.add(confirm)
        confirm.add_done_callback(self._confirms.discard)

    async def _confirm(self, active: ActiveFault, injection: Injection, params: BaseModel) -> None:
        fault = self.kit.fault(active.kind)
        assert fault is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.effective_timeout_s
        while active.fault_id in self.ledger.active:
            try:
                evidence = await fault.effective(injection, params)
            except SubjectError as exc:
                evidence, error = None, str(exc)
            else:
                error = "no evidence yet"
            if evidence is not None:
                active.effective = True
                await self._record(FaultEffective(fault_id=active.fault_id, evidence=evidence),
                                   correlation=active.fault_id, causation=active.injected_id)
                return
            if loop.time() > deadline:
                reason = f"not effective within {self.config.effective_timeout_s}s: {error}"
                await self._record(FaultFailed(fault_id=active.fault_id, stage="verify", reason=reason),
                                   correlation=active.fault_id, causation=active.injected_id)
                return
            await asyncio.sleep(0.1)  # polling the real system for the fault's effect

    async def _expire(self, active: ActiveFault, ttl: float) -> None:
        await asyncio.sleep(ttl)  # the TTL itself: a timer, not a synchronisation
        async with self._lock:
            if active.fault_id not in self.ledger.active or await self._revert(active, "ttl"):
                return
        await self._retry_revert(active, "ttl")

    async def _retry_revert(self, active: ActiveFault, reason: str) -> None:
        """Retry a failed revert with backoff until it works, the fault is gone, or the service stops."""
        delay = self.config.revert_retry_first_s
        while not await self._interrupted(delay):
            async with self._lock:
                if active.fault_id not in self.ledger.active:
                    return
                if await self._revert(active, reason, record_failure=False):
                    return
            delay = min(delay * 2, self.config.revert_retry_max_s)

    async def _revert(self, active: ActiveFault, reason: str, *, record_failure: bool = True) -> bool:
        """Revert and record; must hold ``_lock``. A failed revert keeps the fault active; returns success."""
        fault = self.kit.fault(active.kind)
        try:
            if fault is None:
                raise SubjectError(f"this chaos service cannot revert kind {active.kind!r}")
            result = await fault.revert(active.undo)
        except Exception as exc:  # a subject failure or a bug: the fault stays active either way
            log.error("revert failed fault=%s reason=%s: %s", active.fault_id, reason, _describe(exc))
            if record_failure:
                await self._record(FaultFailed(fault_id=active.fault_id, stage="revert", reason=_describe(exc)),
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
        log.info("reverted fault=%s reason=%s changed=%s", active.fault_id, reason, result.changed)
        return True

    # -- helpers ----------------------------------------------------------------

    async def _record(self, data: Payload, **kwargs: Any) -> None:
        """Publish a fact; if NATS refuses, log it loudly and carry on (the action already happened).
        The ledger follows it either way: it holds what this service did."""
        try:
            await self.emit(data, **kwargs)
        except Exception:
            log.exception("could not record %s %s", data.TYPE, kwargs.get("correlation", ""))
        self.ledger.apply(data)

    async def _interrupted(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)  # a backoff pause, not a sync
        return self.stopping.is_set()


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return f"bad request: {where}: {first.get('msg')}"
    return str(exc) or repr(exc)

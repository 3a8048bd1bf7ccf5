"""The chaos service.

Commands (NATS micro service ``chaos``; JSON in, JSON out):
- ``cmd.chaos.inject`` ``{"kind", "target"?, "ttl_s"?, "params"?}`` → ``{"fault": {...}}``
- ``cmd.chaos.revert`` ``{"fault_id"}`` (or ``{"all": true}``) → ``{"reverted": [ids]}``
- ``cmd.chaos.list`` → ``{"faults": [...], "kinds": [...], "targets": [...]}``

Every fault has a TTL and an undo. Refusals (unknown kind or target, bad
parameters, a second fault on a busy target) are errors with a clear
description and inject nothing. On start, faults the log says are still
active (left by a crashed predecessor) are reverted (reason ``restart``); on
SIGTERM, active faults are reverted (reason ``shutdown``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

from nats.micro import add_service
from nats.micro.request import Request, ServiceError
from nats.micro.service import Service
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import FaultEffective, FaultFailed, FaultInjected, FaultRequested, FaultReverted, new_fault_id
from events.bus import Delivered
from events.envelope import utcnow
from events.subjects import command, run_domain
from services.chaos.ledger import ActiveFault, Ledger
from services.runtime import ServiceProcess
from subjects.base import Adapter, AdapterError, Injection, RefusedError
from subjects.registry import load_adapter

log = logging.getLogger(__name__)


class ChaosSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_CHAOS_", extra="ignore")
    max_ttl_s: float = 3600.0
    effective_timeout_s: float = 5.0


class InjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    target: str | None = None
    ttl_s: float | None = Field(default=None, gt=0)
    params: dict[str, Any] = {}


class RevertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fault_id: str | None = None
    all: bool = False


class ChaosService(ServiceProcess):
    name = "chaos"

    def __init__(self, bus, settings, adapter: Adapter | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(bus, settings)
        self.config = ChaosSettings()
        self.adapter = adapter or load_adapter()
        self.ledger = Ledger()
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        self._micro: Service | None = None

    async def main(self) -> None:
        await self._revert_leftovers()
        self._micro = await add_service(self.bus.nc, name="chaos", version="0.1.0",
                                        description="Inject, list and revert faults")
        for verb, handler in (("inject", self._cmd_inject), ("revert", self._cmd_revert),
                              ("list", self._cmd_list)):
            await self._micro.add_endpoint(name=verb, subject=command("chaos", verb), handler=handler)
        self.ready.set()
        await self.stopping.wait()

    async def stop(self) -> None:
        if self._micro is not None:
            await self._micro.stop()
        async with self._lock:
            for fault in list(self.ledger.active.values()):
                await self._revert(fault, "shutdown")
        for timer in self._timers.values():
            timer.cancel()
        await self.adapter.close()
        await super().stop()

    # -- recovery ---------------------------------------------------------------

    async def _revert_leftovers(self) -> None:
        async def fold(d: Delivered) -> None:
            self.ledger.apply(d.event.data)

        await self.bus.replay(run_domain(self.run, "chaos"), fold)
        for fault in list(self.ledger.active.values()):
            log.warning("reverting fault left active by a previous instance fault=%s kind=%s",
                        fault.fault_id, fault.kind)
            await self._revert(fault, "restart")

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
        except AdapterError as exc:
            raise ServiceError("500", str(exc)) from exc
        await req.respond(json.dumps(result).encode())

    async def listing(self) -> dict[str, Any]:
        return {"faults": [f.as_dict() for f in self.ledger.active.values()],
                "kinds": [{"kind": f.kind, "description": f.description, "default_ttl_s": f.default_ttl_s}
                          for f in self.adapter.faults()],
                "targets": self.adapter.targets()}

    async def inject(self, body: dict[str, Any]) -> dict[str, Any]:
        request = InjectRequest.model_validate(body)
        fault = self.adapter.fault(request.kind)
        if fault is None:
            known = ", ".join(f.kind for f in self.adapter.faults())
            raise RefusedError(f"unknown fault kind {request.kind!r}; known: {known}")
        if request.target is not None and request.target not in self.adapter.targets():
            raise RefusedError(f"target {request.target!r} is outside the lab; targets: "
                               f"{', '.join(self.adapter.targets())}")
        params = fault.params_model.model_validate(request.params)
        ttl = request.ttl_s or fault.default_ttl_s
        if ttl > self.config.max_ttl_s:
            raise RefusedError(f"ttl_s {ttl} exceeds the maximum {self.config.max_ttl_s}")
        async with self._lock:
            if request.target is not None and (busy := self.ledger.on_target(request.target)):
                raise RefusedError(f"target {request.target} already has fault {busy.fault_id} "
                                   f"({busy.kind}); revert it first")
            fault_id = new_fault_id()
            requested = self.event(FaultRequested(fault_id=fault_id, kind=fault.kind, target=request.target,
                                                  params=params.model_dump(), ttl_s=ttl),
                                   correlation=fault_id)
            await self.bus.publish(requested)
            try:
                injection = await fault.inject(request.target, params)
            except AdapterError as exc:
                await self.emit(FaultFailed(fault_id=fault_id, stage="inject", reason=str(exc)),
                                correlation=fault_id, causation=requested.id)
                raise
            if (busy := self.ledger.on_target(injection.target)) is not None:
                await fault.revert(injection.undo)
                raise RefusedError(f"target {injection.target} already has fault {busy.fault_id}")
            injected = FaultInjected(fault_id=fault_id, kind=fault.kind, target=injection.target,
                                     params=params.model_dump(), undo=injection.undo,
                                     expires_at=utcnow() + timedelta(seconds=ttl))
            await self.emit(injected, correlation=fault_id, causation=requested.id)
            self.ledger.apply(injected)
        active = self.ledger.active[fault_id]
        self._timers[fault_id] = asyncio.create_task(self._expire(active, ttl))
        asyncio.create_task(self._confirm(active, injection, params))  # noqa: RUF006 - tracked by ledger
        log.info("injected fault=%s kind=%s target=%s ttl=%s", fault_id, fault.kind, injection.target, ttl)
        return {"fault": active.as_dict()}

    async def revert(self, body: dict[str, Any]) -> dict[str, Any]:
        request = RevertRequest.model_validate(body)
        async with self._lock:
            if request.all:
                targets = list(self.ledger.active.values())
            elif request.fault_id in self.ledger.active:
                targets = [self.ledger.active[request.fault_id]]
            else:
                raise RefusedError(f"no active fault {request.fault_id!r}")
            for fault in targets:
                await self._revert(fault, "explicit")
        return {"reverted": [f.fault_id for f in targets]}

    # -- lifecycle of one fault -------------------------------------------------

    async def _confirm(self, active: ActiveFault, injection: Injection, params: BaseModel) -> None:
        fault = self.adapter.fault(active.kind)
        assert fault is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.effective_timeout_s
        while active.fault_id in self.ledger.active:
            try:
                evidence = await fault.effective(injection, params)
            except AdapterError as exc:
                evidence, error = None, str(exc)
            else:
                error = "no evidence yet"
            if evidence is not None:
                active.effective = True
                await self.emit(FaultEffective(fault_id=active.fault_id, evidence=evidence),
                                correlation=active.fault_id)
                return
            if loop.time() > deadline:
                reason = f"not effective within {self.config.effective_timeout_s}s: {error}"
                await self.emit(FaultFailed(fault_id=active.fault_id, stage="verify", reason=reason),
                                correlation=active.fault_id)
                return
            await asyncio.sleep(0.1)  # polling the real system for the fault's effect

    async def _expire(self, active: ActiveFault, ttl: float) -> None:
        await asyncio.sleep(ttl)  # the TTL itself: a timer, not a synchronisation
        async with self._lock:
            if active.fault_id in self.ledger.active:
                await self._revert(active, "ttl")

    async def _revert(self, active: ActiveFault, reason: str) -> None:
        """Revert and record; must hold ``_lock``. A failed revert is recorded and kept active."""
        fault = self.adapter.fault(active.kind)
        try:
            if fault is None:
                raise AdapterError(f"this chaos service cannot revert kind {active.kind!r}")
            detail = await fault.revert(active.undo)
        except AdapterError as exc:
            log.error("revert failed fault=%s: %s", active.fault_id, exc)
            await self.emit(FaultFailed(fault_id=active.fault_id, stage="revert", reason=str(exc)),
                            correlation=active.fault_id)
            return
        reverted = FaultReverted(fault_id=active.fault_id, reason=reason, detail=detail)  # type: ignore[arg-type]
        await self.emit(reverted, correlation=active.fault_id)
        self.ledger.apply(reverted)
        timer = self._timers.pop(active.fault_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        log.info("reverted fault=%s reason=%s", active.fault_id, reason)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return f"bad request: {where}: {first.get('msg')}"
    return str(exc)


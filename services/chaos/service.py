"""The chaos service: injects faults on command, proves them, and always reverts them.

One process per lab (or per campaign slot). Its parts, each a layer of :class:`ChaosService`:

- :mod:`services.chaos.commands`: ``cmd.chaos.inject``, ``revert`` and ``list`` (with their
  bodies in :mod:`services.chaos.requests`): refusals, repeated requests, the injection's
  records and the residual window between an injection and its record;
- :mod:`services.chaos.lifecycle`: a fault once in effect: proving it (``fault_effective``),
  its TTL, reverting it and retrying a failed revert with backoff;
- :mod:`services.chaos.recovery`: the hand-over between instances: at start, requests a crash
  cut off are settled and the faults left in effect adopted;
- :mod:`services.chaos.ledger`: the faults this service is responsible for, folded from ``chaos.*``.

Every fault has a TTL and an undo, and every request ends in a terminal record. Stopping the
service (SIGTERM) reverts nothing: the faults stay in effect and in the log for the next
instance, except an injection the log does not carry, which no successor could know of.
"""

from __future__ import annotations

import logging

from nats.micro import add_service
from nats.micro.service import Service

from events.bus import Bus
from events.subjects import command
from services.chaos.commands import FaultCommands
from services.chaos.recovery import MID_INJECTION, FaultRecovery
from services.chaos.settings import ChaosSettings
from services.runtime import ServiceSettings
from subjects.contract.fault_kit import FaultKit

__all__ = ["MID_INJECTION", "ChaosService"]

log = logging.getLogger(__name__)


class ChaosService(FaultCommands, FaultRecovery):
    """The process: recovers what the log says a predecessor left, then answers commands until stopped
    with ``kit``, the run's subject's fault kit (see :mod:`services.chaos.bootstrap`)."""

    name = "chaos"

    def __init__(self, bus: Bus, settings: ServiceSettings, *, config: ChaosSettings, subject: str,
                 kit: FaultKit) -> None:
        """Built by :func:`services.chaos.bootstrap.build` (in production and in tests alike)."""
        super().__init__(bus, settings, config=config, subject=subject)
        self.kit = kit
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
            log.info("active faults handed over to the next chaos service",
                     extra={"count": len(handed), "faults": handed})
        self._cancel_tasks()
        await self.kit.close()
        await super().stop()

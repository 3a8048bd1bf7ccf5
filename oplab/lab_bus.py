"""What a launcher asks of the lab's bus while it starts or stops a run.

:func:`create_stream` makes the stream (the launcher owns its limits) once JetStream answers,
:func:`ensure_stream` makes it only if missing (on a NATS of the user's),
:func:`wait_services_ready` waits for the services' ``svc.started``, and :func:`revert_all` asks the
chaos service to revert every fault before the processes stop. Each connects, does its one thing
and closes: the launchers are synchronous and call them through ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats.errors
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from events import ServiceStarted
from events.bus import Bus
from events.commands import request
from events.replay import Delivered
from events.settings import BusSettings
from events.subjects import run_type
from oplab.stack_info import StackError


async def create_stream(nats_url: str, replicas: int, timeout: float) -> None:
    """Create (or update) the lab's stream as soon as JetStream answers; StackError at the deadline."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url, stream_replicas=replicas), source="oplab-up",
                            ensure_stream=False)
    # no JetStream leader yet: the cluster is electing it, so look again shortly (every 0.25 s)
    retrying = AsyncRetrying(retry=retry_if_exception_type((nats.errors.Error, TimeoutError)),
                             stop=stop_after_delay(timeout), wait=wait_fixed(0.25), reraise=True)
    try:
        await retrying(bus.ensure_stream, update=True)
    except (nats.errors.Error, TimeoutError) as exc:
        raise StackError(f"NATS JetStream did not become available within {timeout:.0f}s: {exc!r}; "
                         "see the nats logs") from None
    finally:
        await bus.close()


async def ensure_stream(nats_url: str) -> None:
    """Create the lab's stream if it is missing, leaving an existing one's limits alone (a NATS
    of the user's, whose services would create it too, but a launcher may write first)."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-up")
    await bus.close()


async def wait_services_ready(run: str, nats_url: str, replicas: int, services: set[str], timeout: float,
                              since: float | None = None) -> set[str]:
    """Wait for each service's ``svc.started`` (recorded once it accepts work) at or after
    ``since`` (epoch seconds); return the services still missing at the deadline."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url, stream_replicas=replicas), source="oplab-up",
                            ensure_stream=False)  # ensured below, with the launcher's limits
    seen: set[str] = set()
    all_ready = asyncio.Event()

    async def handle(d: Delivered) -> None:
        if isinstance(d.event.data, ServiceStarted) and (since is None or d.event.time.timestamp() >= since):
            seen.add(d.event.data.service)
            if services <= seen:
                all_ready.set()

    try:
        await bus.ensure_stream(update=True)  # the launcher owns the stream's limits
        replay = await bus.replay(run_type(run, ServiceStarted), handle, follow=True)
        try:
            await asyncio.wait_for(all_ready.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            await replay.stop()
    finally:
        await bus.close()
    return services - seen


async def revert_all(nats_url: str, timeout: float, scope: str | None = None) -> dict[str, Any]:
    """Ask the chaos service (of lab ``scope``) to revert every fault, as the lab goes down; its
    answer: ``{"reverted": [fault ids], "failed": [fault ids]}``."""
    bus = await asyncio.wait_for(Bus.connect(BusSettings(nats_url=nats_url), source="oplab", ensure_stream=False),
                                 timeout)  # a connect to nothing retries for ever
    try:
        return await request(bus.nc, "chaos", "revert", {"all": True, "reason": "shutdown"}, timeout=timeout,
                             scope=scope)
    finally:
        await bus.close()

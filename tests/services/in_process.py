"""A service run inside the test's process, the way its own process runs it: ``main`` as a task on a
bus connection of the service's own, and on the way out the steps a SIGTERM takes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from services.runtime import ServiceProcess

S = TypeVar("S", bound=ServiceProcess)


class InProcess(Generic[S]):
    """``service.main()`` running as a task of this process (started on construction)."""

    def __init__(self, service: S) -> None:
        self.service = service
        self.task = asyncio.create_task(service.main())

    async def ready(self, timeout: float = 10.0) -> S:
        """The service, once it says it is ready for work; raises what ``main`` raised if it ended
        first, and fails if neither happens within ``timeout``."""
        ready = asyncio.create_task(self.service.ready.wait())
        await asyncio.wait({self.task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self.task.done():
            self.task.result()  # raises what went wrong
        assert self.service.ready.is_set(), f"{self.service.name} service not ready within {timeout}s"
        return self.service

    async def stop(self) -> None:
        """Stop the service, wait (10 s at most) for ``main`` to return, stop its feeds and close its
        connection."""
        try:
            await self.service.stop()
            await asyncio.wait_for(self.task, 10)
            await self.service.stop_feeds()
        finally:  # a service whose main failed still lets go of its connection
            await self.service.bus.close()


@asynccontextmanager
async def serving(service: S) -> AsyncIterator[InProcess[S]]:
    """``service`` runs while the block does, and is stopped after it (see ``InProcess.stop``)."""
    running = InProcess(service)
    try:
        yield running
    finally:
        await running.stop()

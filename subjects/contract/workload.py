"""The workload role (the load generator's): real client traffic that doubles as a black-box prober."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable

from events import WorkloadStats

StatsSink = Callable[[WorkloadStats], Awaitable[None]]


class Workload(abc.ABC):
    """Realistic client traffic on the subject; what the clients experienced, per interval."""

    @abc.abstractmethod
    async def run(self, stop: asyncio.Event, on_stats: StatsSink, interval_s: float = 1.0) -> None:
        """Send traffic until ``stop`` is set; call ``on_stats`` once per interval (and once at the end)."""

    async def close(self) -> None:
        """Release connections. Default: nothing to release."""

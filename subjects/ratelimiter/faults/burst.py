"""The control fault: ``hot_key_burst``.

Legitimate traffic at ``factor`` (4) x one key's limit for at most
``duration_s``, from a task of the injecting process. Nothing breaks (the
control case); proof: the limiter blocks the excess. Undo ``{"burst_id", "key"}``: stop
the task (from the target alone there is nothing to stop: the burst died with
the process that ran it; see :mod:`subjects.bursts`).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from subjects.bursts import Burst, BurstFault
from subjects.contract import RefusedError
from subjects.contract.fault_kit import Injection
from subjects.ratelimiter.faults.keys import KeyFault
from subjects.ratelimiter.settings import RateLimiterSettings


class BurstParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float = Field(default=4.0, gt=1, le=20, description="arrival rate as a multiple of the key's limit")
    duration_s: float = Field(default=120.0, gt=0, le=900, description="the burst stops by itself after this")
    concurrency: int = Field(default=16, ge=1, le=64, description="requests in flight at most")


MAX_BURST_RATE = 2000.0
"""Requests per second a burst may send (the node's own throughput target): a control, not a DoS."""


class HotKeyBurst(BurstFault["KeyBurst"], KeyFault[BurstParams]):
    """The control case: legitimate traffic, far over one key's limit, for a bounded time.

    Nothing breaks: the limiter must block the excess (the proof), and no invariant that
    leads to a mutating remedy may fire. The burst runs as a task of the
    process that injected it (the chaos service): see :mod:`subjects.bursts`.
    """

    kind = "hot_key_burst"
    description = "a legitimate traffic burst far over one key's limit (nothing is broken: the control case)"

    async def inject_into(self, key: str, p: BurstParams) -> Injection:
        limit = await self.limit_in_force(key)
        rate = p.factor * max(limit, 1) / self.cluster.settings.window_s
        if rate > MAX_BURST_RATE:
            raise RefusedError(f"a burst of {rate:.0f} requests/s on {key} exceeds the {MAX_BURST_RATE:.0f}/s cap")
        return self.launch(KeyBurst(self.cluster.settings, key, limit, rate, p.duration_s, p.concurrency), key)

    def undo_for(self, burst_id: str, target: str) -> dict[str, Any]:
        return {"burst_id": burst_id, "key": target}  # named as every key fault's undo names its key


class KeyBurst(Burst):
    """Evenly paced checks on one key, round-robin over the nodes, until stopped or ``duration_s``.
    Proof: the limiter blocked some of them."""

    def __init__(self, settings: RateLimiterSettings, key: str, limit: int, rate: float, duration_s: float,
                 concurrency: int) -> None:
        super().__init__(f"burst on {key}", rate, duration_s)
        self.settings, self.key, self.limit, self.concurrency = settings, key, limit, concurrency
        self.sent = self.allowed = self.blocked = self.errors = 0

    @property
    def proven(self) -> bool:
        return self.blocked > 0

    def summary(self) -> dict[str, Any]:
        return {"key": self.key, "limit": self.limit, "rate_per_s": round(self.rate, 1), **self.timing(),
                "sent": self.sent, "allowed": self.allowed, "blocked": self.blocked, "errors": self.errors}

    def tally(self) -> str:
        return f"sent {self.sent}, allowed {self.allowed}, blocked {self.blocked}, errors {self.errors}"

    async def _one(self, session: aiohttp.ClientSession, url: str) -> None:
        try:
            async with session.post(f"{url}/check", json={"key": self.key}) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError):
            status = 0
        self.sent += 1
        if status == 200:
            self.allowed += 1
        elif status == 429:
            self.blocked += 1
        else:
            self.errors += 1

    async def run(self) -> None:
        urls = list(self.settings.node_urls.values())
        semaphore = asyncio.Semaphore(self.concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout,
                                         connector=aiohttp.TCPConnector(limit=self.concurrency)) as session:
            for i in itertools.count():
                if not await self.turn():
                    break
                await semaphore.acquire()
                task = asyncio.create_task(self._one(session, urls[i % len(urls)]))
                task.add_done_callback(lambda t: (in_flight.discard(t), semaphore.release()))
                in_flight.add(task)
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

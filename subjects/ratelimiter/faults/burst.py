"""The control fault: ``hot_key_burst``.

Legitimate traffic at ``factor`` (4) x one key's limit for at most
``duration_s``, from a task of the injecting process. Nothing breaks (the
control case); proof: the limiter blocks the excess. Undo ``{"burst_id"}``: stop
the task (from the target alone there is nothing to stop: the burst died with
the process that ran it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from subjects.contract import RefusedError
from subjects.contract.fault_kit import Injection, Reverted
from subjects.ratelimiter.cluster import RateLimiterCluster
from subjects.ratelimiter.faults.base import RateLimiterFault
from subjects.ratelimiter.settings import RateLimiterSettings


class BurstParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float = Field(default=4.0, gt=1, le=20, description="arrival rate as a multiple of the key's limit")
    duration_s: float = Field(default=120.0, gt=0, le=900, description="the burst stops by itself after this")
    concurrency: int = Field(default=16, ge=1, le=64, description="requests in flight at most")


MAX_BURST_RATE = 2000.0
"""Requests per second a burst may send (the node's own throughput target): a control, not a DoS."""


class HotKeyBurst(RateLimiterFault[BurstParams]):
    """The control case: legitimate traffic, far over one key's limit, for a bounded time.

    Nothing breaks: the limiter must block the excess, and no invariant that
    leads to a mutating remedy may fire. The burst runs as a task of the
    process that injected it (the chaos service); revert stops it, and if that
    process dies the burst dies with it, so a restarted chaos service has
    nothing left to undo.
    """

    kind = "hot_key_burst"
    target_kind = "key"
    description = "a legitimate traffic burst far over one key's limit (nothing is broken: the control case)"
    params_model = BurstParams

    def __init__(self, cluster: RateLimiterCluster) -> None:
        super().__init__(cluster)
        self._bursts: dict[str, Burst] = {}

    async def inject_into(self, key: str, p: BurstParams) -> Injection:
        limit = await self.limit_in_force(key)
        rate = p.factor * max(limit, 1) / self.cluster.settings.window_s
        if rate > MAX_BURST_RATE:
            raise RefusedError(f"a burst of {rate:.0f} requests/s on {key} exceeds the {MAX_BURST_RATE:.0f}/s cap")
        burst = Burst(self.cluster.settings, key, limit, rate, p.duration_s, p.concurrency)
        burst_id = secrets.token_hex(6)
        self._bursts[burst_id] = burst
        burst.start()
        return Injection(target=key, undo={"burst_id": burst_id, "key": key})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        burst = self._bursts.get(str(injection.undo.get("burst_id")))
        if burst is None or burst.blocked == 0:
            return None
        return burst.summary()

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return {"burst_id": "", "key": target}  # the burst died with the process that ran it

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        burst_id = str(undo.get("burst_id", ""))
        burst = self._bursts.pop(burst_id, None)
        if burst is None:
            return Reverted(f"burst {burst_id} not running (already stopped, or the process that ran it is gone)",
                            changed=False)
        await burst.stop()
        s = burst.summary()
        return Reverted(f"burst on {s['key']} stopped after {s['ran_s']:.1f}s: sent {s['sent']}, "
                        f"allowed {s['allowed']}, blocked {s['blocked']}, errors {s['errors']}")

    async def close(self) -> None:
        for burst in list(self._bursts.values()):
            await burst.stop()
        self._bursts.clear()


class Burst:
    """Evenly paced checks on one key, round-robin over the nodes, until stopped or ``duration_s``."""

    def __init__(self, settings: RateLimiterSettings, key: str, limit: int, rate: float, duration_s: float,
                 concurrency: int) -> None:
        self.settings, self.key, self.limit, self.rate = settings, key, limit, rate
        self.duration_s, self.concurrency = duration_s, concurrency
        self.sent = self.allowed = self.blocked = self.errors = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._started = 0.0
        self._ended: float | None = None

    def start(self) -> None:
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._run(), name=f"burst:{self.key}")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def summary(self) -> dict[str, Any]:
        end = self._ended if self._ended is not None else time.monotonic()
        return {"key": self.key, "limit": self.limit, "rate_per_s": round(self.rate, 1),
                "running": self._ended is None, "ran_s": round(end - self._started, 3), "sent": self.sent,
                "allowed": self.allowed, "blocked": self.blocked, "errors": self.errors}

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

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        urls = list(self.settings.node_urls.values())
        gap = 1.0 / self.rate
        semaphore = asyncio.Semaphore(self.concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        deadline = loop.time() + self.duration_s
        next_at = loop.time()
        timeout = aiohttp.ClientTimeout(total=1.0)
        try:
            async with aiohttp.ClientSession(timeout=timeout,
                                             connector=aiohttp.TCPConnector(limit=self.concurrency)) as session:
                for i in itertools.count():
                    now = loop.time()
                    if self._stop.is_set() or now >= deadline:
                        break
                    if next_at > now:
                        with contextlib.suppress(TimeoutError):  # pacing, interruptible by stop
                            await asyncio.wait_for(self._stop.wait(), next_at - now)
                        continue
                    next_at = max(next_at + gap, now - gap)
                    await semaphore.acquire()
                    task = asyncio.create_task(self._one(session, urls[i % len(urls)]))
                    task.add_done_callback(lambda t: (in_flight.discard(t), semaphore.release()))
                    in_flight.add(task)
                if in_flight:
                    await asyncio.gather(*in_flight, return_exceptions=True)
        finally:
            self._ended = time.monotonic()

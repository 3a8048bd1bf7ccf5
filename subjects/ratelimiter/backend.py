"""Server-level operations on the lab's Redis: health, write probe, pause, memory limit.

The limiter's *data* lives in :mod:`~subjects.ratelimiter.limiter`; this module
holds the few typed server operations that the observer, the faults and the
agent's tools need. Nothing here takes a command name from its caller: each
method sends one fixed command, with the timeouts of the shared client (a
paused or hung Redis surfaces as a timeout, never as a hang).

Classification of the write probe (``SET <prefix>:probe <now> PX 10000``):

- ``ok``: Redis accepted the write.
- ``timeout``: no answer within ``write_probe_timeout_s``: writes are paused
  (``CLIENT PAUSE ... WRITE``) or Redis is hung.
- ``oom``: refused with ``OOM`` (``maxmemory`` reached under ``noeviction``).
- ``readonly``: refused because the server is a read-only replica.
- ``unreachable``: no connection (refused, reset).
- ``error``: any other refusal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from subjects.contract import SubjectError
from subjects.ratelimiter.settings import RateLimiterSettings

T = TypeVar("T")

REDIS_TARGET = "redis"
"""The lab's name for its Redis server, as a fault target."""

WriteKind = Literal["ok", "timeout", "paused", "oom", "readonly", "unreachable", "error"]

# INFO fields worth showing an operator (absent ones are skipped: Redis lacks the paused_* ones)
INFO_FIELDS = ("redis_version", "valkey_version", "uptime_in_seconds", "connected_clients", "blocked_clients",
               "used_memory", "used_memory_human", "maxmemory", "maxmemory_human", "maxmemory_policy",
               "instantaneous_ops_per_sec", "role", "paused_reason", "paused_actions",
               "paused_timeout_milliseconds")


@dataclass(frozen=True)
class WriteProbe:
    kind: WriteKind
    latency_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_redis_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def guarded(what: str, call: Awaitable[T]) -> T:
    """Await ``call``; a Redis failure becomes a SubjectError naming ``what``."""
    try:
        return await call
    except (RedisError, OSError) as exc:
        raise SubjectError(f"{what}: redis unavailable: {describe_redis_error(exc)}") from exc


def paused_actions(info: dict[str, Any]) -> str | None:
    """What a CLIENT PAUSE currently blocks (``write``/``all``), ``None`` when not paused or unknown."""
    actions = info.get("paused_actions")
    return str(actions) if actions not in (None, "", "none") else None


def out_of_memory(info: dict[str, Any]) -> bool:
    """``maxmemory`` set and exceeded under ``noeviction``: Redis refuses writes."""
    try:
        maxmemory, used = int(info.get("maxmemory") or 0), int(info.get("used_memory") or 0)
    except (TypeError, ValueError):
        return False
    return maxmemory > 0 and used > maxmemory and info.get("maxmemory_policy") == "noeviction"


class RedisBackend:
    """Typed server operations on the lab's Redis, over a shared redis.asyncio client."""

    def __init__(self, settings: RateLimiterSettings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.redis = client

    async def info(self) -> dict[str, Any]:
        """The :data:`INFO_FIELDS` present on this server (raises RedisError/OSError)."""
        raw = await self.redis.info()
        return {k: raw[k] for k in INFO_FIELDS if k in raw}

    async def write_probe(self) -> WriteProbe:
        """Prove Redis accepts a write now; never raises (see the module doc for the kinds)."""
        start = time.perf_counter()

        def done(kind: WriteKind, error: str | None = None) -> WriteProbe:
            return WriteProbe(kind, round((time.perf_counter() - start) * 1000, 3), error)

        try:
            async with asyncio.timeout(self.settings.write_probe_timeout_s):
                await self.redis.set(self.settings.probe_key, str(time.time()), px=10_000)
        except (TimeoutError, RedisTimeoutError):
            return done("timeout", f"write timed out after {self.settings.write_probe_timeout_s:g}s "
                                   f"(writes paused or Redis hung)")
        except OutOfMemoryError as exc:
            return done("oom", f"write refused, out of memory (OOM): {exc}")
        except ReadOnlyError as exc:
            return done("readonly", f"write refused: {exc}")
        except (RedisConnectionError, OSError) as exc:
            return done("unreachable", describe_redis_error(exc))
        except RedisError as exc:
            return done("error", describe_redis_error(exc))
        return done("ok")

    # -- the two server-level faults and their remedies ------------------------------

    async def pause_writes(self, pause_ms: int) -> None:
        """``CLIENT PAUSE <pause_ms> WRITE``: reads (PING, INFO, read-only scripts) go on, writes wait.

        ``ALL`` is not used: under it Redis postpones every command of every
        client, ``CLIENT UNPAUSE`` included, so nothing could lift it before its
        timeout.
        """
        await self.redis.execute_command("CLIENT", "PAUSE", int(pause_ms), "WRITE")

    async def unpause(self) -> None:
        """``CLIENT UNPAUSE`` (harmless when nothing is paused)."""
        await self.redis.execute_command("CLIENT", "UNPAUSE")

    async def memory_config(self) -> dict[str, Any]:
        """``{"maxmemory": bytes, "maxmemory_policy": name}`` from CONFIG GET."""
        limit = await self.redis.config_get("maxmemory")
        policy = await self.redis.config_get("maxmemory-policy")
        return {"maxmemory": int(limit.get("maxmemory", 0)), "maxmemory_policy": str(policy.get("maxmemory-policy"))}

    async def set_memory_config(self, maxmemory: int, policy: str) -> None:
        """CONFIG SET maxmemory and maxmemory-policy, in the order that never evicts by accident.

        Lowering the limit sets the policy first (so ``noeviction`` is in force
        before the limit bites); raising it (or lifting it, 0) sets the limit
        first (so an evicting policy never meets the old, low limit).
        """
        if maxmemory < 0:
            raise ValueError("maxmemory must be >= 0")
        current = (await self.memory_config())["maxmemory"]
        raising = maxmemory == 0 or (current != 0 and maxmemory >= current)
        steps = [("maxmemory", str(int(maxmemory))), ("maxmemory-policy", policy)]
        for name, value in steps if raising else reversed(steps):
            await self.redis.config_set(name, value)

    async def used_memory(self) -> int:
        return int((await self.redis.info("memory"))["used_memory"])

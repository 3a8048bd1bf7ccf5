"""The rate limiter's shared state in Redis, and every operation on it.

Both the node service and the lab's roles go through :class:`LimiterStore`, so
the key layout (see :class:`~subjects.ratelimiter.settings.RateLimiterSettings`)
lives in one place. All times come from Redis (``TIME``), never from the
caller's clock: nodes with skewed clocks still agree on every window.

- ``check`` runs ``window.lua``: a sliding-window log per key (ZSET, score =
  microseconds of Redis time), pruned to the window, allowed iff
  ``count + cost <= limit``, the limit read from the limits hash (seeded from
  the declared policy when absent).
- ``counters`` reads every policy key's window in one atomic script: entries in
  the window (future-dated ones included: they count against the limit) and how
  many are dated in the future (which no correct writer produces).
- ``heartbeat`` records ``node -> {url, pid, instance, started_at_us,
  last_seen_us}`` in one hash with Redis time, so a node that stops beating
  reads as down (its entry stays) rather than vanishing.
- ``set_maintenance`` announces a planned restart of a node (``node ->
  {until_us, reason}``, Redis time): the operator's restart is not an incident
  while it lasts, and the announcement expires by itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from subjects.ratelimiter.settings import RateLimiterSettings

WINDOW_LUA = resources.files("subjects.ratelimiter").joinpath("window.lua").read_text()

# KEYS[1] limits hash, KEYS[2..n+1] window ZSETs; ARGV[1] window_us, ARGV[2..n+1] policy
# keys, ARGV[n+2..2n+1] declared limits. Read-only.
COUNTERS_LUA = """#!lua flags=no-writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local n = #KEYS - 1
local out = {t[1], t[2]}
local lo = '(' .. string.format('%.0f', now - window)
local future = '(' .. string.format('%.0f', now)
for i = 1, n do
  local limit = tonumber(redis.call('HGET', KEYS[1], ARGV[1 + i]))
  if limit == nil then limit = tonumber(ARGV[1 + n + i]) end
  local count = redis.call('ZCOUNT', KEYS[1 + i], lo, '+inf')
  local ahead = redis.call('ZCOUNT', KEYS[1 + i], future, '+inf')
  out[#out + 1] = count
  out[#out + 1] = ahead
  out[#out + 1] = limit
end
return out
"""

# KEYS[1] nodes hash; ARGV node, url, pid, instance. Keeps started_at while the instance is the same.
# allow-oom: a heartbeat rewrites one fixed-size field, so liveness survives a full Redis
# (otherwise an out-of-memory store would masquerade as every node being dead).
HEARTBEAT_LUA = """#!lua flags=allow-oom
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local started = now
local prev = redis.call('HGET', KEYS[1], ARGV[1])
if prev then
  local ok, doc = pcall(cjson.decode, prev)
  if ok and type(doc) == 'table' and doc['instance'] == ARGV[4] and doc['started_at_us'] then
    started = doc['started_at_us']
  end
end
local doc = {url = ARGV[2], pid = tonumber(ARGV[3]), instance = ARGV[4],
             started_at_us = started, last_seen_us = now}
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(doc))
return {t[1], t[2]}
"""

# KEYS[1] window ZSET; ARGV[1] window_us. Removes future-dated and expired entries.
# allow-oom: pruning only frees memory, so it must work when Redis is full.
PRUNE_LUA = """#!lua flags=allow-oom
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local future = redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now), '+inf')
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
return {future, expired, redis.call('ZCARD', KEYS[1])}
"""

# KEYS[1] window ZSET; ARGV[1] offset_us ahead of now, ARGV[2] window_us, ARGV[3..] members.
FUTURE_ENTRIES_LUA = """#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local base = now + tonumber(ARGV[1])
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], string.format('%.0f', base + i), ARGV[i])
end
local ttl_ms = math.floor((tonumber(ARGV[1]) + #ARGV + tonumber(ARGV[2])) / 1000) + 1
if redis.call('PTTL', KEYS[1]) < ttl_ms then
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
return {t[1], t[2]}
"""


def us_to_datetime(us: int) -> datetime:
    """Microseconds since the epoch (Redis time) as an aware UTC datetime."""
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def _time_us(seconds: Any, micros: Any) -> int:
    return int(seconds) * 1_000_000 + int(micros)


def make_redis(settings: RateLimiterSettings) -> aioredis.Redis:
    """A redis.asyncio client with short timeouts and one immediate reconnect-retry.

    redis-py's default retry backs off for seconds when the server is down; the
    lab wants a fast, explicit failure (a 503 or an ``ok=False`` snapshot) instead.
    """
    return aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
    )


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check. ``limit == -1`` means the key is not in the policy."""

    allowed: bool
    count: int
    limit: int
    now_us: int

    @property
    def known(self) -> bool:
        return self.limit >= 0


@dataclass(frozen=True)
class CounterState:
    key: str
    count: int
    limit: int
    future_entries: int

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "count": self.count, "limit": self.limit,
                "future_entries": self.future_entries}


@dataclass(frozen=True)
class NodeRecord:
    """What a node's heartbeats say about it, judged against Redis time ``now_us``."""

    node: str
    url: str
    pid: int | None
    instance: str
    started_at_us: int | None
    last_seen_us: int | None
    now_us: int
    down_after_s: float
    maintenance_until_us: int | None = None
    maintenance_reason: str = ""

    @property
    def in_maintenance(self) -> bool:
        """A planned restart is announced for this node and has not expired (by Redis time)."""
        return self.maintenance_until_us is not None and self.maintenance_until_us > self.now_us

    @property
    def age_s(self) -> float | None:
        """Seconds since the last heartbeat (Redis time), None if never seen."""
        if self.last_seen_us is None:
            return None
        return max(0.0, (self.now_us - self.last_seen_us) / 1_000_000)

    @property
    def fresh(self) -> bool:
        age = self.age_s
        return age is not None and age <= self.down_after_s

    @property
    def status(self) -> str:
        return "up" if self.fresh else "down"

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "url": self.url,
            "pid": self.pid,
            "started_at": us_to_datetime(self.started_at_us).isoformat() if self.started_at_us else None,
            "last_seen": us_to_datetime(self.last_seen_us).isoformat() if self.last_seen_us else None,
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "status": self.status,
            "maintenance": (f"{self.maintenance_reason or 'planned'} until "
                            f"{us_to_datetime(self.maintenance_until_us).isoformat()}"
                            if self.in_maintenance and self.maintenance_until_us else None),
        }


class LimiterStore:
    """Typed operations on the limiter's Redis state. Owns one redis.asyncio client."""

    def __init__(self, settings: RateLimiterSettings, client: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client if client is not None else make_redis(settings)
        self._window = self.redis.register_script(WINDOW_LUA)
        self._counters = self.redis.register_script(COUNTERS_LUA)
        self._heartbeat = self.redis.register_script(HEARTBEAT_LUA)
        self._prune = self.redis.register_script(PRUNE_LUA)
        self._future = self.redis.register_script(FUTURE_ENTRIES_LUA)

    async def close(self) -> None:
        await self.redis.aclose()

    # -- basics -------------------------------------------------------------

    async def ping_ms(self) -> float:
        """Round trip of a PING in milliseconds (raises on failure)."""
        start = time.perf_counter()
        await self.redis.ping()
        return (time.perf_counter() - start) * 1000

    async def now_us(self) -> int:
        """Redis server time in microseconds."""
        seconds, micros = await self.redis.time()
        return _time_us(seconds, micros)

    # -- limits ---------------------------------------------------------------

    def _policy_limit(self, key: str) -> int:
        return self.settings.policy.get(key, -1)

    async def seed_limits(self) -> None:
        """Store each declared policy limit that the limits hash lacks (never overwrites)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, limit in self.settings.policy.items():
                pipe.hsetnx(self.settings.limits_key, key, limit)
            await pipe.execute()

    async def limits(self) -> dict[str, int]:
        """Effective limit of every policy key (the hash, else the declared policy)."""
        stored = await self.redis.hgetall(self.settings.limits_key)
        return {k: int(stored.get(k, v)) for k, v in self.settings.policy.items()}

    async def set_limit(self, key: str, limit: int) -> int:
        """Set the effective limit of a key; returns the previous one (-1 if none)."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self.settings.limits_key, key)
            pipe.hset(self.settings.limits_key, key, limit)
            previous, _ = await pipe.execute()
        return int(previous) if previous is not None else self._policy_limit(key)

    # -- the window -----------------------------------------------------------

    async def check(self, key: str, cost: int, member: str) -> CheckResult:
        """Admit (or not) ``cost`` units for ``key``; ``member`` must be unique per call."""
        if cost < 1:
            raise ValueError("cost must be >= 1")
        allowed, count, limit, seconds, micros = await self._window(
            keys=[self.settings.window_key(key), self.settings.limits_key],
            args=[key, self.settings.window_us, cost, self._policy_limit(key), member],
        )
        return CheckResult(bool(int(allowed)), int(count), int(limit), _time_us(seconds, micros))

    async def counters(self, keys: list[str] | None = None) -> tuple[int, list[CounterState]]:
        """(Redis time in µs, the window of each key) read atomically. Defaults to the policy keys."""
        keys = list(self.settings.policy) if keys is None else keys
        raw = await self._counters(
            keys=[self.settings.limits_key, *(self.settings.window_key(k) for k in keys)],
            args=[self.settings.window_us, *keys, *(self._policy_limit(k) for k in keys)],
        )
        now = _time_us(raw[0], raw[1])
        out = []
        for i, key in enumerate(keys):
            count, ahead, limit = raw[2 + 3 * i: 5 + 3 * i]
            out.append(CounterState(key, int(count), int(limit), int(ahead)))
        return now, out

    async def reset(self, key: str) -> int:
        """Empty a key's window; returns how many entries it held."""
        zset = self.settings.window_key(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zcard(zset)
            pipe.delete(zset)
            held, _ = await pipe.execute()
        return int(held)

    async def prune(self, key: str) -> dict[str, int]:
        """Remove a key's future-dated and expired entries; returns the counts and what is left."""
        future, expired, left = await self._prune(
            keys=[self.settings.window_key(key)], args=[self.settings.window_us]
        )
        return {"future_removed": int(future), "expired_removed": int(expired), "remaining": int(left)}

    async def add_future_entries(self, key: str, members: list[str], ahead_s: float) -> int:
        """Write ``members`` into a key's window dated ``ahead_s`` after Redis now; returns now (µs).

        This is how a writer with a clock far ahead would corrupt the log; the
        counter_drift fault uses it. The key's expiry is extended to cover them.
        """
        seconds, micros = await self._future(
            keys=[self.settings.window_key(key)],
            args=[int(ahead_s * 1_000_000), self.settings.window_us, *members],
        )
        return _time_us(seconds, micros)

    async def remove_members(self, key: str, members: list[str]) -> int:
        """ZREM exactly ``members`` from a key's window; returns how many were there."""
        if not members:
            return 0
        return int(await self.redis.zrem(self.settings.window_key(key), *members))

    async def entries(self, key: str) -> list[tuple[str, int]]:
        """Every (member, score µs) in a key's window, oldest first (for inspection and tests)."""
        raw: list[Any] = await self.redis.zrange(self.settings.window_key(key), 0, -1, withscores=True)
        return [(str(m), int(s)) for m, s in raw]

    # -- heartbeats -----------------------------------------------------------

    async def heartbeat(self, node: str, url: str, pid: int, instance: str) -> int:
        """Record that ``node`` is alive now (Redis time); returns that time in µs."""
        seconds, micros = await self._heartbeat(
            keys=[self.settings.nodes_key], args=[node, url, pid, instance]
        )
        return _time_us(seconds, micros)

    async def nodes(self) -> tuple[int, dict[str, NodeRecord]]:
        """(Redis time in µs, every node that ever sent a heartbeat under this prefix)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.hgetall(self.settings.nodes_key)
            pipe.hgetall(self.settings.maintenance_key)
            (seconds, micros), raw, planned = await pipe.execute()
        now = _time_us(seconds, micros)
        out: dict[str, NodeRecord] = {}
        for node, doc in sorted(raw.items()):
            try:
                info = json.loads(doc)
            except ValueError:
                info = {}
            try:
                plan = json.loads(planned[node]) if node in planned else {}
            except ValueError:
                plan = {}
            out[node] = NodeRecord(
                node=node,
                url=str(info.get("url", "")),
                pid=int(info["pid"]) if isinstance(info.get("pid"), int | float) else None,
                instance=str(info.get("instance", "")),
                started_at_us=int(info["started_at_us"]) if info.get("started_at_us") else None,
                last_seen_us=int(info["last_seen_us"]) if info.get("last_seen_us") else None,
                now_us=now,
                down_after_s=self.settings.down_after_s,
                maintenance_until_us=int(plan["until_us"]) if isinstance(plan.get("until_us"), int) else None,
                maintenance_reason=str(plan.get("reason", "")),
            )
        return now, out

    async def set_maintenance(self, node: str, seconds: float, reason: str) -> int:
        """Announce a planned restart of ``node`` for ``seconds`` (Redis time); returns its end in µs."""
        until = await self.now_us() + round(seconds * 1_000_000)
        await self.redis.hset(self.settings.maintenance_key, node, json.dumps({"until_us": until, "reason": reason}))
        return until

    async def clear_maintenance(self, node: str) -> None:
        await self.redis.hdel(self.settings.maintenance_key, node)

    async def clear(self) -> None:
        """Delete every key under the prefix (a clean subject state for a new run)."""
        batch: list[str] = []
        async for name in self.redis.scan_iter(match=f"{self.settings.key_prefix}:*", count=500):
            batch.append(name)
            if len(batch) >= 500:
                await self.redis.delete(*batch)
                batch.clear()
        if batch:
            await self.redis.delete(*batch)

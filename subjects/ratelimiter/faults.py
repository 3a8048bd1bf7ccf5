"""Real faults for the rate limiter, each with proof of effect and an idempotent undo.

- ``node_kill``: SIGKILL one node's process through supervisord. Programs run
  with ``autorestart=false``, so the node stays down until started again.
  Undo ``{"node"}``: start it if it is not running.
- ``counter_drift``: write ``factor`` x limit bogus entries into a live key's
  window, dated ``ahead_s`` (default one hour) after Redis now, as a writer
  with a clock far ahead would. They never age out of the window, so the key
  reads over its limit and its real traffic is blocked. Undo ``{"key",
  "members"}``: ZREM exactly those members, nothing else.
- ``ghost_allowing``: one node fails open through its fault hook
  (``PUT /admin/faults/fail_open``): it admits every request without
  consulting Redis. Proof: it admits a check costing more than the key's whole
  limit. Undo ``{"node"}``: ``DELETE`` the hook (a restarted node has lost it
  anyway: the state lives in the process).
- ``redis_pause``: ``CLIENT PAUSE <pause_s> WRITE`` (a self-expiring safety net,
  300 s by default). Every check is a write, so every check stalls until the
  node's Redis timeout and fails. ``ALL`` is not used because it would also
  postpone ``CLIENT UNPAUSE``. Proof: a write probe times out. Undo: ``CLIENT
  UNPAUSE``.
- ``redis_oom``: ``maxmemory-policy noeviction`` and ``maxmemory`` set to
  ``fraction`` (0.5) of the memory in use, so Redis refuses writes with OOM.
  Proof: a write probe is refused with OOM. Undo ``{"maxmemory",
  "maxmemory_policy"}``: the values read with CONFIG GET before.
- ``limit_misconfig``: a key's limit set to ``factor`` (0.25) x its current
  value, or to ``limit``, through a node's management API. Proof: the limit in
  force is the wrong one. Undo ``{"key", "previous"}``: the limit before.
- ``hot_key_burst``: legitimate traffic at ``factor`` (4) x one key's limit for
  at most ``duration_s``, from a task of the injecting process. Nothing breaks
  (the control case); proof: the limiter blocks the excess. Undo
  ``{"burst_id"}``: stop the task.

``undo_for_target`` (for a chaos service that died mid-injection, before the
undo was recorded) derives an undo from the target alone where it can: start
the node, clear the node's hook, unpause, restore the *declared* memory
configuration or limit (the values before are unknown). ``counter_drift``
cannot (its undo names the exact entries it wrote; the ``future_dated_entries``
invariant surfaces them and ``prune_counter`` removes them).

Targets outside the lab (unknown node or key; anything but ``redis`` for the
server faults) and bad parameters raise :class:`RefusedError` or a pydantic
ValidationError before anything is touched. Reverting twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from typing import Any, get_args

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from subjects.contract import NoArgs, RefusedError, SubjectError
from subjects.contract.fault_kit import Fault, Injection, Reverted
from subjects.ratelimiter.backend import guarded, paused_actions
from subjects.ratelimiter.cluster import ALREADY_HEALTHY, NodeUnreachable, RateLimiterCluster
from subjects.ratelimiter.settings import RateLimiterSettings
from subjects.supervisor import RUNNING_STATES


class RateLimiterFault(Fault):
    """A rate limiter fault: holds the cluster it acts through.

    ``target_kind`` says what it breaks: a ``node`` (default: the first healthy
    one), a policy ``key`` (default: the first) or ``redis``.
    """

    target_kind: str = "node"

    def __init__(self, cluster: RateLimiterCluster) -> None:
        self.cluster = cluster

    async def resolve_target(self, target: str | None) -> str:
        if self.target_kind == "node":
            return self.cluster.require_node(target if target is not None else await self.cluster.pick_healthy_node())
        if self.target_kind == "key":
            return self.cluster.require_key(target if target is not None else self.cluster.first_key())
        return str(self.cluster.require_redis(target))


class NodeKill(RateLimiterFault):
    kind = "node_kill"
    description = "SIGKILL one rate limiter node's process; it stays down until started again"
    params_model = NoArgs
    default_ttl_s = 60.0

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        control = self.cluster.control
        node = await self.resolve_target(target)
        state = await control.state(node)
        if state not in RUNNING_STATES:
            raise RefusedError(f"node {node} is not running (state {state}): nothing to kill")
        pid = await control.kill(node)
        return Injection(target=node, undo={"node": node, "pid": pid})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        node = injection.target
        probe = await self.cluster.probe(node)
        if probe.ok:
            return None
        record = await self.cluster.heartbeat(node)
        return {
            "node": node,
            "health": probe.detail,
            "process": await self._state(node),
            "last_seen": record.as_dict()["last_seen"] if record else None,
            "heartbeat_age_s": round(record.age_s, 3) if record and record.age_s is not None else None,
        }

    async def _state(self, node: str) -> str:
        try:
            return await self.cluster.control.state(node)
        except SubjectError as exc:
            return f"unknown ({exc})"

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return {"node": target}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        node = self.cluster.require_node(str(undo.get("node", "")))
        action = await self.cluster.ensure_running(node, self.cluster.settings.restart_deadline_s)
        return Reverted(f"node {node}: {action}", changed=action != ALREADY_HEALTHY)


class DriftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float = Field(default=3.0, gt=0, le=20, description="bogus entries as a multiple of the limit")
    ahead_s: float = Field(default=3600.0, gt=0, le=30 * 24 * 3600,
                           description="how far after Redis now the bogus entries are dated")


class CounterDrift(RateLimiterFault):
    kind = "counter_drift"
    target_kind = "key"
    description = "write bogus future-dated entries into a live key's window so it reads over its limit"
    params_model = DriftParams
    default_ttl_s = 60.0

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        p = params if isinstance(params, DriftParams) else DriftParams.model_validate(params.model_dump())
        key = await self.resolve_target(target)
        limit = (await guarded(f"counter_drift on {key}", self.cluster.store.limits()))[key]
        n = max(1, round(p.factor * max(limit, 1)))
        members = [f"drift:{secrets.token_hex(4)}:{i}" for i in range(n)]
        await guarded(f"counter_drift on {key}", self.cluster.store.add_future_entries(key, members, p.ahead_s))
        return Injection(target=key, undo={"key": key, "members": members})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        _, counters = await guarded("counter_drift", self.cluster.store.counters([injection.target]))
        counter = counters[0]
        if counter.count <= counter.limit:
            return None
        return counter.as_dict()

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return None  # the undo removes exactly the fault's own entries, whose names only the injection knew

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        key = self.cluster.require_key(str(undo.get("key", "")))
        members = [str(m) for m in undo.get("members", [])]
        removed = await guarded(f"counter_drift revert on {key}", self.cluster.store.remove_members(key, members))
        return Reverted(f"removed {removed} of {len(members)} bogus entries from {key}", changed=removed > 0)


class GhostAllowing(RateLimiterFault):
    kind = "ghost_allowing"
    description = "make one node fail open: it admits every request without consulting Redis (a silent bug)"
    params_model = NoArgs
    default_ttl_s = 60.0

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        node = await self.resolve_target(target)
        status, body = await self.cluster.node_call(node, "PUT", "/admin/faults/fail_open")
        if status == 404:
            raise SubjectError(f"node {node} serves no fault hooks (OPLAB_RL_FAULT_HOOKS is off)")
        if status != 200 or not isinstance(body, dict) or not body.get("fail_open"):
            raise SubjectError(f"node {node} refused the fail-open hook: HTTP {status} {body!r}")
        return Injection(target=node, undo={"node": node, "instance": body.get("instance"), "pid": body.get("pid")})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        """Proof: the node admits one check costing more than the key's whole limit, which no
        correct node can (``count + cost <= limit`` never holds), and which writes nothing."""
        node = injection.target
        limits = await guarded("ghost_allowing", self.cluster.store.limits())
        key, limit = next(((k, v) for k, v in limits.items() if 0 <= v < 1000), (None, None))
        if key is None or limit is None:
            raise SubjectError("ghost_allowing: no policy key with a limit under 1000 to prove it with")
        status, body = await self.cluster.node_call(node, "POST", "/check", {"key": key, "cost": limit + 1})
        if status != 200 or not isinstance(body, dict) or not body.get("allowed"):
            return None
        return {"node": node, "key": key, "limit": limit, "cost": limit + 1, "allowed": True,
                "proof": f"node {node} admitted a check costing {limit + 1} on {key} (limit {limit})"}

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return {"node": target}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        node = self.cluster.require_node(str(undo.get("node", "")))
        try:
            status, body = await self.cluster.node_call(node, "DELETE", "/admin/faults/fail_open")
        except NodeUnreachable as exc:
            return Reverted(f"node {node} unreachable ({exc}); its fail-open state lived only in that process's "
                            "memory", changed=False)
        if status != 200 or not isinstance(body, dict):
            raise SubjectError(f"node {node} did not clear the fail-open hook: HTTP {status} {body!r}")
        if body.get("previous"):
            return Reverted(f"node {node}: fail-open cleared")
        return Reverted(f"node {node}: was not failing open (already reverted, or restarted since)", changed=False)


class PauseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pause_s: float = Field(default=300.0, gt=0, le=3600, description=(
        "how long Redis keeps the pause by itself if nobody lifts it: a safety net, the TTL revert or a "
        "remedy lifts it earlier"))


class RedisPause(RateLimiterFault):
    kind = "redis_pause"
    target_kind = "redis"
    description = "pause Redis for writes (CLIENT PAUSE WRITE): every rate check, being a write, stalls"
    params_model = PauseParams
    default_ttl_s = 60.0

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        p = params if isinstance(params, PauseParams) else PauseParams.model_validate(params.model_dump())
        target = await self.resolve_target(target)
        backend = self.cluster.backend
        already = paused_actions(await guarded("redis_pause", backend.info()))
        if already is not None:
            raise RefusedError(f"Redis is already paused ({already}); not stacking a second pause")
        pause_ms = round(p.pause_s * 1000)
        await guarded("redis_pause", backend.pause_writes(pause_ms))
        return Injection(target=target, undo={"pause_ms": pause_ms})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        backend = self.cluster.backend
        write = await backend.write_probe()
        if write.kind != "timeout":
            return None
        info = await guarded("redis_pause", backend.info())
        return {"write": write.as_dict(), "paused_actions": info.get("paused_actions"),
                "paused_timeout_ms": info.get("paused_timeout_milliseconds")}

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return {}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        backend = self.cluster.backend
        info = await guarded("redis_pause revert", backend.info())
        paused = paused_actions(info)
        await guarded("redis_pause revert", backend.unpause())  # even so: unpausing twice is harmless
        if paused is None and "paused_actions" in info:  # a server that does not say counts as paused
            return Reverted("Redis was not paused (already unpaused, or its pause ran out)", changed=False)
        return Reverted(f"CLIENT UNPAUSE sent (paused for {paused}): Redis accepts writes again")


class OomParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fraction: float = Field(default=0.5, gt=0, lt=1, description="new maxmemory as a fraction of used memory")


_POLICIES = frozenset(get_args(RateLimiterSettings.model_fields["redis_maxmemory_policy"].annotation))


class RedisOom(RateLimiterFault):
    kind = "redis_oom"
    target_kind = "redis"
    description = "lower Redis maxmemory below the memory in use, with noeviction: writes (every check) fail"
    params_model = OomParams
    default_ttl_s = 60.0

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        p = params if isinstance(params, OomParams) else OomParams.model_validate(params.model_dump())
        target = await self.resolve_target(target)
        backend = self.cluster.backend
        before = await guarded("redis_oom", backend.memory_config())
        used = await guarded("redis_oom", backend.used_memory())
        if 0 < before["maxmemory"] < used:
            raise RefusedError(f"Redis is already over its maxmemory ({used} > {before['maxmemory']})")
        limit = max(1, int(used * p.fraction))
        await guarded("redis_oom", backend.set_memory_config(limit, "noeviction"))
        return Injection(target=target, undo={**before, "set_to": limit})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        backend = self.cluster.backend
        write = await backend.write_probe()
        if write.kind != "oom":
            return None
        config = await guarded("redis_oom", backend.memory_config())
        return {"write": write.as_dict(), **config, "used_memory": await guarded("redis_oom", backend.used_memory())}

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        """The values before are unknown: the lab's declared memory configuration stands in for them."""
        settings = self.cluster.settings
        return {"maxmemory": settings.redis_maxmemory, "maxmemory_policy": settings.redis_maxmemory_policy}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        maxmemory, policy = undo.get("maxmemory"), undo.get("maxmemory_policy")
        if not isinstance(maxmemory, int) or maxmemory < 0 or policy not in _POLICIES:
            raise RefusedError(f"bad undo data for redis_oom: {undo!r}")
        backend = self.cluster.backend
        before = await guarded("redis_oom revert", backend.memory_config())
        await guarded("redis_oom revert", backend.set_memory_config(maxmemory, str(policy)))
        changed = (before["maxmemory"], before["maxmemory_policy"]) != (maxmemory, policy)
        return Reverted(f"restored maxmemory={maxmemory} maxmemory-policy={policy}"
                        f"{'' if changed else ' (already so)'}", changed=changed)


class MisconfigParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float | None = Field(default=None, gt=0, le=100, description=(
        "new limit as a multiple of the current one (default 0.25 when no limit is given)"))
    limit: int | None = Field(default=None, ge=0, le=1_000_000, description="new limit, instead of a factor")

    @model_validator(mode="after")
    def _one(self) -> MisconfigParams:
        if self.factor is not None and self.limit is not None:
            raise ValueError("give either factor or limit, not both")
        return self


class LimitMisconfig(RateLimiterFault):
    kind = "limit_misconfig"
    target_kind = "key"
    description = "change a key's limit to a wrong value through a node's management API"
    params_model = MisconfigParams
    default_ttl_s = 60.0

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        p = params if isinstance(params, MisconfigParams) else MisconfigParams.model_validate(params.model_dump())
        key = await self.resolve_target(target)
        current = (await guarded("limit_misconfig", self.cluster.store.limits()))[key]
        new = p.limit if p.limit is not None else max(0, round(current * (p.factor or 0.25)))
        if new == current:
            raise RefusedError(f"limit {new} is the current limit of {key}: that changes nothing")
        node, previous = await self._put(key, new)
        return Injection(target=key, undo={"key": key, "previous": previous, "set_to": new, "node": node})

    async def _put(self, key: str, limit: int) -> tuple[str, int]:
        """``PUT /admin/limits/{key}`` on the first healthy node; (node, previous limit)."""
        node = await self.cluster.pick_healthy_node()
        status, body = await self.cluster.node_call(node, "PUT", f"/admin/limits/{key}", {"limit": limit})
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("previous"), int):
            raise SubjectError(f"node {node} refused to set the limit of {key}: HTTP {status} {body!r}")
        return node, int(body["previous"])

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        key, set_to = injection.target, injection.undo.get("set_to")
        live = (await guarded("limit_misconfig", self.cluster.store.limits()))[key]
        if live != set_to:
            return None
        return {"key": key, "limit": live, "declared": self.cluster.settings.policy[key],
                "previous": injection.undo.get("previous")}

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        """The limit before is unknown: the declared policy's limit stands in for it."""
        limit = self.cluster.settings.policy.get(target)
        return None if limit is None else {"key": target, "previous": limit}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        key = self.cluster.require_key(str(undo.get("key", "")))
        previous = undo.get("previous")
        if not isinstance(previous, int) or previous < 0:
            raise RefusedError(f"bad undo data for limit_misconfig: {undo!r}")
        try:
            node, was = await self._put(key, previous)
        except (RefusedError, SubjectError):  # no node answers: the shared state is reachable directly
            was = await guarded("limit_misconfig revert", self.cluster.store.set_limit(key, previous))
            node = "redis"
        return Reverted(f"limit of {key} restored to {previous} (was {was}; via {node})", changed=was != previous)


class BurstParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float = Field(default=4.0, gt=1, le=20, description="arrival rate as a multiple of the key's limit")
    duration_s: float = Field(default=120.0, gt=0, le=900, description="the burst stops by itself after this")
    concurrency: int = Field(default=16, ge=1, le=64, description="requests in flight at most")


MAX_BURST_RATE = 2000.0
"""Requests per second a burst may send (the node's own throughput target): a control, not a DoS."""


class HotKeyBurst(RateLimiterFault):
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
    default_ttl_s = 60.0

    def __init__(self, cluster: RateLimiterCluster) -> None:
        super().__init__(cluster)
        self._bursts: dict[str, Burst] = {}

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        p = params if isinstance(params, BurstParams) else BurstParams.model_validate(params.model_dump())
        key = await self.resolve_target(target)
        limit = (await guarded("hot_key_burst", self.cluster.store.limits()))[key]
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


FAULT_TYPES: tuple[type[RateLimiterFault], ...] = (
    NodeKill, CounterDrift, GhostAllowing, RedisPause, RedisOom, LimitMisconfig, HotKeyBurst)
"""The catalogue, in the order ``oplab subjects`` and ``chaos list`` show it."""

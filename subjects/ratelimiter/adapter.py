"""The rate limiter as the lab sees it: observation, invariants, tools, faults, workload.

Observation reads Redis directly (heartbeats, counters, health) and probes each
node's ``/health`` concurrently, reusing one redis.asyncio client and one
aiohttp session; it is bounded by ``observe_timeout_s`` and never raises. A
node is ``up`` only if its heartbeat is fresh (by Redis time) *and* its
``/health`` answers 200: a killed node is seen at once by the probe, a hung
one by its stale heartbeat, and either way it stays in the list as ``down``.
Each observation also writes a probe key (bounded by ``write_probe_timeout_s``):
the backend reads ``ok`` only if Redis answers *and* accepts writes, so a
write-paused or out-of-memory Redis shows as failing with the reason, while the
reads that observation needs (all read-only, the counters script flagged
``no-writes``) still work.

Tools and faults act through :class:`~subjects.ratelimiter.limiter.LimiterStore`
(typed operations on the shared state, the same code the nodes run),
:class:`~subjects.ratelimiter.backend.RedisBackend` (a few fixed server
operations: INFO, write probe, pause, memory limit) and
:class:`~subjects.ratelimiter.control.NodeControl` (supervisord). The lab's
targets are the configured node ids, the declared policy keys and ``redis``
(the lab's Redis server, for the server-level faults).
"""

from __future__ import annotations

import asyncio
import errno
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlparse

import aiohttp
from redis.exceptions import RedisError

from events import BackendView, CounterView, NodeView, ObsSnapshot
from events.envelope import utcnow
from subjects.base import Adapter, AdapterError, Fault, Invariant, Playbook, RefusedError, Tool, Workload
from subjects.ratelimiter import faults as _faults
from subjects.ratelimiter import invariants as _invariants
from subjects.ratelimiter import playbooks as _playbooks
from subjects.ratelimiter import tools as _tools
from subjects.ratelimiter.backend import REDIS_TARGET, RedisBackend
from subjects.ratelimiter.control import RUNNING_STATES, NodeControl, NodeUnreachable
from subjects.ratelimiter.limiter import LimiterStore, NodeRecord, us_to_datetime
from subjects.ratelimiter.settings import RateLimiterSettings
from subjects.ratelimiter.workload import RateLimiterWorkload


@dataclass(frozen=True)
class Probe:
    """Result of one ``GET /health``: ``ok`` iff it answered 200."""

    node: str
    ok: bool
    status: int | None
    detail: str
    latency_ms: float


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if exc.errno == errno.ECONNREFUSED:
            return "connection refused"
        return f"cannot connect: {exc.strerror or exc}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed by the node"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RateLimiterAdapter(Adapter):
    """The rate limiter subject. Construct with settings (default: from the environment)."""

    name = "ratelimiter"
    description = (
        "A distributed rate limiter: several stateless HTTP nodes answer 'may this client make a request "
        "now?' for named keys (users, API routes, tenants). Decisions are made atomically in a shared "
        "Redis with a sliding-window log per key (one entry per admitted request, timed by the Redis "
        "server clock), against per-key limits per window from a declared policy. Each node reports "
        "liveness through heartbeats in Redis and serves /health, metrics and a management API; the "
        "node processes run under a process supervisor. Healthy means: every node up, every key's "
        "window at or below its limit, and the shared store reachable."
    )

    def __init__(self, settings: RateLimiterSettings | None = None) -> None:
        self.settings = settings if settings is not None else RateLimiterSettings()
        self.store = LimiterStore(self.settings)
        self.backend = RedisBackend(self.settings, self.store.redis)
        self.control = NodeControl(self.settings.supervisor_url, self.settings.supervisor_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._invariants = _invariants.invariants()
        self._tools = _tools.tools(self)
        self._faults = _faults.faults(self)
        self._playbooks = _playbooks.playbooks()

    # -- the Adapter interface ----------------------------------------------------

    def invariants(self) -> list[Invariant]:
        return list(self._invariants)

    def tools(self) -> list[Tool]:
        return list(self._tools)

    def faults(self) -> list[Fault]:
        return list(self._faults)

    def playbooks(self) -> list[Playbook]:
        return list(self._playbooks)

    def workload(self) -> Workload:
        return RateLimiterWorkload(self.settings)

    def targets(self) -> list[str]:
        """Node ids, policy keys, then ``redis``: the only things faults and tools may touch."""
        return [*self.settings.node_urls, *self.settings.policy, REDIS_TARGET]

    async def close(self) -> None:
        for fault in self._faults:
            await fault.close()  # e.g. a running hot_key_burst
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        await self.store.close()

    # -- observation ----------------------------------------------------------------

    async def observe(self) -> ObsSnapshot:
        """One snapshot of nodes, Redis and counters. Never raises; failure is ``ok=False``."""
        observed_at = utcnow()
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.observe_timeout_s):
                return await self._observe(observed_at, start)
        except Exception as exc:  # an observation must never raise
            error = (f"observation timed out after {self.settings.observe_timeout_s:g}s"
                     if isinstance(exc, TimeoutError) else _describe(exc))
            return ObsSnapshot(subject=self.name, ok=False, error=error, observed_at=observed_at,
                               duration_ms=round((time.perf_counter() - start) * 1000, 3),
                               backend=BackendView(name="redis", ok=False, error=error,
                                                   info={"address": self.redis_address()}))

    async def _observe(self, observed_at: datetime, start: float) -> ObsSnapshot:
        probes_task = asyncio.ensure_future(self._probe_all())
        write_task = asyncio.ensure_future(self.backend.write_probe())
        try:
            ping_ms, info, (now_us, counters), (_, records) = await asyncio.gather(
                self.store.ping_ms(), self.backend.info(), self.store.counters(), self.store.nodes()
            )
        except (RedisError, OSError) as exc:
            probes, _ = await asyncio.gather(probes_task, write_task)
            error = f"redis unreachable at {self.redis_address()}: {_describe(exc)}"
            return ObsSnapshot(
                subject=self.name, ok=False, error=error, observed_at=observed_at,
                duration_ms=round((time.perf_counter() - start) * 1000, 3),
                backend=BackendView(name="redis", ok=False, error=_describe(exc),
                                    info={"address": self.redis_address(), "reads": "failed"}),
                nodes=[self._view(node, None, probes[node]) for node in self._node_ids(None)],
            )
        except BaseException:
            probes_task.cancel()
            write_task.cancel()
            raise
        probes, write = await asyncio.gather(probes_task, write_task)
        nodes = [self._view(node, records.get(node), probes[node]) for node in self._node_ids(records)]
        window_s = self.settings.window_s
        policy = self.settings.policy
        return ObsSnapshot(
            subject=self.name,
            ok=True,
            observed_at=observed_at,
            duration_ms=round((time.perf_counter() - start) * 1000, 3),
            nodes=nodes,
            backend=BackendView(name="redis", ok=write.ok, latency_ms=round(ping_ms, 3), error=write.error,
                                writable=write.ok, write_error=write.error,
                                info={"address": self.redis_address(), **info, "reads": "ok",
                                      "server_time": us_to_datetime(now_us).isoformat(),
                                      "write_probe": write.kind, "write_ms": write.latency_ms}),
            counters=[CounterView(key=c.key, count=c.count, limit=c.limit, window_s=window_s,
                                  future_entries=c.future_entries, declared_limit=policy.get(c.key))
                      for c in counters],
        )

    def _node_ids(self, records: dict[str, NodeRecord] | None) -> list[str]:
        """The lab's configured nodes; if none are configured, whatever sends heartbeats."""
        configured = list(self.settings.node_urls)
        return configured if configured or records is None else sorted(records)

    def _url(self, node: str, record: NodeRecord | None = None) -> str:
        return self.settings.node_urls.get(node) or (record.url if record else "")

    def _view(self, node: str, record: NodeRecord | None, probe: Probe | None) -> NodeView:
        problems = []
        if record is None:
            if probe is None or not probe.ok:
                problems.append("no heartbeat seen")
            else:
                problems.append("heartbeats unavailable")
        elif not record.fresh:
            problems.append(f"no heartbeat for {record.age_s:.1f}s")
        if probe is not None and not probe.ok:
            problems.append(f"/health {probe.detail}")
        status: Literal["up", "down"] = "down" if problems else "up"
        if status == "up" and probe is not None:
            detail = f"heartbeat {record.age_s:.2f}s ago, /health ok" if record and record.age_s is not None \
                else "/health ok"
        else:
            detail = "; ".join(problems)
        maintenance = record.as_dict()["maintenance"] if record is not None and record.in_maintenance else None
        if maintenance and status == "down":
            detail += f" (planned restart: {maintenance})"
        age = record.age_s if record is not None else None
        return NodeView(
            node=node,
            url=self._url(node, record),
            status=status,
            last_seen=us_to_datetime(record.last_seen_us) if record and record.last_seen_us else None,
            pid=record.pid if record else None,
            detail=detail,
            health_ok=probe.ok if probe is not None else None,
            heartbeat_age_s=round(age, 3) if age is not None else None,
            maintenance=maintenance,
        )

    def redis_address(self) -> str:
        parsed = urlparse(self.settings.redis_url)
        return f"{parsed.hostname or '?'}:{parsed.port or 6379}"

    # -- helpers shared by tools and faults -----------------------------------------

    def require_node(self, node: str) -> str:
        """``node`` if it is one of the lab's nodes, else RefusedError."""
        if node not in self.settings.node_urls:
            known = ", ".join(self.settings.node_urls) or "none"
            raise RefusedError(f"unknown node {node!r}: not part of the lab (nodes: {known})")
        return node

    def require_key(self, key: str) -> str:
        """``key`` if it is a declared policy key, else RefusedError."""
        if key not in self.settings.policy:
            known = ", ".join(self.settings.policy) or "none"
            raise RefusedError(f"unknown key {key!r}: not in the policy (keys: {known})")
        return key

    def require_redis(self, target: str | None) -> str:
        """``redis`` (also for None), else RefusedError: server faults target the lab's Redis only."""
        if target not in (None, REDIS_TARGET):
            raise RefusedError(f"unknown target {target!r}: this fault targets the lab's Redis, named "
                               f"{REDIS_TARGET!r}")
        return REDIS_TARGET

    async def node_call(self, node: str, method: str, path: str, body: Any = None,
                        timeout_s: float | None = None) -> tuple[int, Any]:
        """One HTTP call to a lab node's API: (status, JSON body). AdapterError if it cannot be made."""
        url = self._url(self.require_node(node))
        timeout = aiohttp.ClientTimeout(total=timeout_s or max(1.0, self.settings.probe_timeout_s))
        try:
            async with self.session().request(method, f"{url}{path}", json=body, timeout=timeout) as resp:
                return resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            raise NodeUnreachable(f"node {node} ({method} {path}): {_describe(exc)}") from exc

    async def node_text(self, node: str, path: str) -> str:
        """``GET path`` on a lab node as text (e.g. ``/metrics``). AdapterError if it cannot be made."""
        url = self._url(self.require_node(node))
        timeout = aiohttp.ClientTimeout(total=max(1.0, self.settings.probe_timeout_s))
        try:
            async with self.session().get(f"{url}{path}", timeout=timeout) as resp:
                if resp.status != 200:
                    raise NodeUnreachable(f"node {node} (GET {path}): HTTP {resp.status}")
                return await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NodeUnreachable(f"node {node} (GET {path}): {_describe(exc)}") from exc

    async def restart(self, node: str, deadline_s: float) -> str:
        """Stop the node's process (SIGTERM) and start it again, even if it reads healthy; wait until healthy."""
        stopped = await self.control.stop(node)
        started = await self.ensure_running(node, deadline_s)
        return f"{stopped}; {started}"

    def session(self) -> aiohttp.ClientSession:
        """The adapter's HTTP session (created on first use, in the running loop).

        ``force_close``: every probe opens a fresh loopback connection, so a
        pooled connection to a node that died never masquerades as its answer.
        """
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=32),
                timeout=aiohttp.ClientTimeout(total=self.settings.probe_timeout_s),
            )
        return self._session

    async def probe(self, node: str) -> Probe:
        """``GET /health`` on one node; never raises."""
        url = self._url(node)
        start = time.perf_counter()
        if not url:
            return Probe(node, False, None, "no URL known", 0.0)
        try:
            async with self.session().get(f"{url}/health") as resp:
                body: Any = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            return Probe(node, False, None, _describe(exc), (time.perf_counter() - start) * 1000)
        latency = (time.perf_counter() - start) * 1000
        if status == 200:
            return Probe(node, True, status, "ok", latency)
        reason = body.get("reason") if isinstance(body, dict) else None
        return Probe(node, False, status, f"HTTP {status}: {reason or 'unhealthy'}", latency)

    async def _probe_all(self) -> dict[str, Probe]:
        nodes = list(self.settings.node_urls)
        results = await asyncio.gather(*(self.probe(n) for n in nodes))
        return dict(zip(nodes, results, strict=True))

    async def heartbeat(self, node: str) -> NodeRecord | None:
        """The node's heartbeat record, or None (never seen or Redis unavailable)."""
        try:
            _, records = await self.store.nodes()
        except (RedisError, OSError):
            return None
        return records.get(node)

    async def node_views(self) -> list[NodeView]:
        """Node views as ``observe`` makes them; falls back to probes alone if Redis is unavailable."""
        probes_task = asyncio.ensure_future(self._probe_all())
        try:
            _, records = await self.store.nodes()
        except (RedisError, OSError):
            records = None
        probes = await probes_task
        return [self._view(n, (records or {}).get(n), probes.get(n)) for n in self._node_ids(records)]

    async def wait_healthy(self, node: str, deadline_s: float) -> Probe:
        """Poll until ``node`` answers ``/health`` 200 and its heartbeat is fresh; AdapterError on deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        probe = Probe(node, False, None, "not probed", 0.0)
        while loop.time() < deadline:
            probe = await self.probe(node)
            if probe.ok:
                record = await self.heartbeat(node)
                if record is not None and record.fresh:
                    return probe
            await asyncio.sleep(0.05)
        raise AdapterError(f"node {node} not healthy {deadline_s:g}s after start: /health {probe.detail}")

    async def ensure_running(self, node: str, deadline_s: float, unhealthy_grace_s: float = 3.0) -> str:
        """Make ``node`` run and answer ``/health``; returns what was done. Idempotent.

        supervisord notices a process death only on its next tick (up to ~1 s),
        and a just-spawned node is RUNNING before its port opens, so "RUNNING but
        unhealthy" is ambiguous: wait up to ``unhealthy_grace_s`` for it to resolve
        (health answers, or supervisord reports the death), then stop and start it.
        Raises AdapterError if the node is not healthy within ``deadline_s``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        unhealthy_since: float | None = None
        actions: list[str] = []
        while loop.time() < deadline:
            probe = await self.probe(node)
            record = await self.heartbeat(node) if probe.ok else None
            if probe.ok and record is not None and record.fresh:
                return "; ".join(actions) if actions else "already running and healthy"
            state = await self.control.state(node)
            if state not in RUNNING_STATES:
                result = await self.control.start(node)
                actions.append(f"{result} (was {state})")
                unhealthy_since = None
            elif unhealthy_since is None:
                unhealthy_since = loop.time()
            elif loop.time() - unhealthy_since > unhealthy_grace_s:
                actions.append(f"stopped unresponsive process ({await self.control.stop(node)})")
                unhealthy_since = None
                continue
            await asyncio.sleep(0.05)
        raise AdapterError(f"node {node} not healthy within {deadline_s:g}s "
                           f"({'; '.join(actions) or 'nothing done'}): /health {probe.detail}")

    async def reset_state(self) -> None:
        """Delete every Redis key under the prefix, then re-seed the limits: a clean subject for a run.

        Node heartbeats are rewritten by live nodes within ``heartbeat_s``.
        """
        try:
            await self.store.clear()
            await self.store.seed_limits()
        except (RedisError, OSError) as exc:
            raise AdapterError(f"could not reset the rate limiter state: {exc}") from exc

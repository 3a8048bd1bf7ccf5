"""The rate limiter cluster as the lab reaches it: the one object tools, faults and the observer act through.

:class:`RateLimiterCluster` holds the connections — a redis.asyncio client
(through :class:`~subjects.ratelimiter.limiter.LimiterStore`, typed operations
on the shared state, the same code the nodes run, and
:class:`~subjects.ratelimiter.backend.RedisBackend`, a few fixed server
operations: INFO, write probe, pause, memory limit), one aiohttp session for the
nodes' HTTP APIs and :class:`~subjects.supervisor.SupervisorControl`
(the nodes' supervisord) — and the helpers every role needs: what belongs to the lab
(``require_node`` / ``require_key`` / ``require_redis``: everything else is
refused), node probes and views, and making a node run again.

A node is ``up`` only if its heartbeat is fresh (by Redis time) *and* its
``/health`` answers 200: a killed node is seen at once by the probe, a hung one
by its stale heartbeat, and either way it stays in the list as ``down``.

Each role (observer, toolbox, fault kit) builds its own cluster, so a process
holds only the connections its role needs.
"""

from __future__ import annotations

import asyncio
import errno
import random
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

import aiohttp
from redis.exceptions import RedisError

from events import NodeView
from events.waiting import WaitTimeout, wait_until
from subjects.contract import RefusedError, SubjectError
from subjects.ratelimiter.backend import REDIS_TARGET, RedisBackend
from subjects.ratelimiter.details import NodeProcess
from subjects.ratelimiter.limiter import LimiterStore, NodeRecord, us_to_datetime
from subjects.ratelimiter.settings import RateLimiterSettings
from subjects.supervisor import RUNNING_STATES, SupervisorControl


class NodeUnreachable(SubjectError):
    """A node's HTTP API could not be reached (refused, timed out, reset)."""


ALREADY_HEALTHY = "already running and healthy"
"""What :meth:`RateLimiterCluster.ensure_running` says when it had nothing to do."""


@dataclass(frozen=True)
class Probe:
    """Result of one ``GET /health``: ``ok`` iff it answered 200."""

    node: str
    ok: bool
    status: int | None
    detail: str
    latency_ms: float


def describe_error(exc: BaseException) -> str:
    """A short human reason for a failed call to a node or Redis."""
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


class RateLimiterCluster:
    """The lab's rate limiter: nodes, their supervisor and the shared Redis."""

    def __init__(self, settings: RateLimiterSettings | None = None) -> None:
        self.settings = settings if settings is not None else RateLimiterSettings()
        self.store = LimiterStore(self.settings)
        self.backend = RedisBackend(self.settings, self.store.redis)
        self.control = SupervisorControl(self.settings.supervisor_url, self.settings.supervisor_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
        await self.store.close()

    # -- what belongs to the lab ------------------------------------------------------

    def targets(self) -> list[str]:
        """Node ids, policy keys, then ``redis``: the only things faults and tools may touch."""
        return [*self.settings.node_urls, *self.settings.policy, REDIS_TARGET]

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

    def first_key(self) -> str:
        return next(iter(self.settings.policy))

    def redis_address(self) -> str:
        parsed = urlparse(self.settings.redis_url)
        return f"{parsed.hostname or '?'}:{parsed.port or 6379}"

    # -- the nodes' HTTP APIs -------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        """The cluster's HTTP session (created on first use, in the running loop).

        ``force_close``: every probe opens a fresh loopback connection, so a
        pooled connection to a node that died never masquerades as its answer.
        """
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=32),
                timeout=aiohttp.ClientTimeout(total=self.settings.probe_timeout_s),
            )
        return self._session

    def url(self, node: str, record: NodeRecord | None = None) -> str:
        return self.settings.node_urls.get(node) or (record.url if record else "")

    async def node_call(self, node: str, method: str, path: str, body: Any = None,
                        timeout_s: float | None = None) -> tuple[int, Any]:
        """One HTTP call to a lab node's API: (status, JSON body). SubjectError if it cannot be made."""
        url = self.url(self.require_node(node))
        timeout = aiohttp.ClientTimeout(total=timeout_s or max(1.0, self.settings.probe_timeout_s))
        try:
            async with self.session().request(method, f"{url}{path}", json=body, timeout=timeout) as resp:
                return resp.status, await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            raise NodeUnreachable(f"node {node} ({method} {path}): {describe_error(exc)}") from exc

    async def node_text(self, node: str, path: str) -> str:
        """``GET path`` on a lab node as text (e.g. ``/metrics``). SubjectError if it cannot be made."""
        url = self.url(self.require_node(node))
        timeout = aiohttp.ClientTimeout(total=max(1.0, self.settings.probe_timeout_s))
        try:
            async with self.session().get(f"{url}{path}", timeout=timeout) as resp:
                if resp.status != 200:
                    raise NodeUnreachable(f"node {node} (GET {path}): HTTP {resp.status}")
                return await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NodeUnreachable(f"node {node} (GET {path}): {describe_error(exc)}") from exc

    async def probe(self, node: str) -> Probe:
        """``GET /health`` on one node; never raises."""
        url = self.url(node)
        start = time.perf_counter()
        if not url:
            return Probe(node, False, None, "no URL known", 0.0)
        try:
            async with self.session().get(f"{url}/health") as resp:
                body: Any = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            return Probe(node, False, None, describe_error(exc), (time.perf_counter() - start) * 1000)
        latency = (time.perf_counter() - start) * 1000
        if status == 200:
            return Probe(node, True, status, "ok", latency)
        reason = body.get("reason") if isinstance(body, dict) else None
        return Probe(node, False, status, f"HTTP {status}: {reason or 'unhealthy'}", latency)

    async def probe_all(self) -> dict[str, Probe]:
        nodes = list(self.settings.node_urls)
        results = await asyncio.gather(*(self.probe(n) for n in nodes))
        return dict(zip(nodes, results, strict=True))

    # -- node views ---------------------------------------------------------------------

    async def heartbeat(self, node: str) -> NodeRecord | None:
        """The node's heartbeat record, or None (never seen or Redis unavailable)."""
        try:
            _, records = await self.store.nodes()
        except (RedisError, OSError):
            return None
        return records.get(node)

    def node_ids(self, records: dict[str, NodeRecord] | None) -> list[str]:
        """The lab's configured nodes; if none are configured, whatever sends heartbeats."""
        configured = list(self.settings.node_urls)
        return configured if configured or records is None else sorted(records)

    def view(self, node: str, record: NodeRecord | None, probe: Probe | None) -> tuple[NodeView, NodeProcess]:
        """What a node reads as (status, in words why) and its process facts."""
        problems = []
        if record is None:
            problems.append("heartbeats unavailable" if probe is not None and probe.ok else "no heartbeat seen")
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
        view = NodeView(
            node=node, status=status, address=self.url(node, record), detail=detail, maintenance=maintenance,
            last_seen=us_to_datetime(record.last_seen_us) if record and record.last_seen_us else None,
        )
        process = NodeProcess(pid=record.pid if record else None, health_ok=probe.ok if probe is not None else None,
                              heartbeat_age_s=round(age, 3) if age is not None else None)
        return view, process

    async def node_views(self) -> list[tuple[NodeView, NodeProcess]]:
        """Every node's view as the observer makes it; from probes alone if Redis is unavailable."""
        probes_task = asyncio.ensure_future(self.probe_all())
        try:
            _, records = await self.store.nodes()
        except (RedisError, OSError):
            records = None
        probes = await probes_task
        return [self.view(n, (records or {}).get(n), probes.get(n)) for n in self.node_ids(records)]

    async def pick_healthy_node(self) -> str:
        """A lab node whose process runs and whose /health answers: the first in an order drawn from
        the run's seed (the same node for the same seed), the first in the configuration without one."""
        nodes = list(self.settings.node_urls)
        if self.settings.seed is not None:
            random.Random(self.settings.seed).shuffle(nodes)
        for node in nodes:
            try:
                if await self.control.state(node) in RUNNING_STATES and (await self.probe(node)).ok:
                    return node
            except SubjectError:
                continue
        raise RefusedError("no running, healthy node to target")

    # -- making a node run again ------------------------------------------------------------

    async def wait_healthy(self, node: str, deadline_s: float) -> Probe:
        """Poll (every 0.05 s) until ``node`` answers ``/health`` 200 and its heartbeat is fresh;
        SubjectError, with the last ``/health`` answer, on the deadline."""
        probe = Probe(node, False, None, "not probed", 0.0)

        async def healthy() -> Probe | None:
            nonlocal probe
            probe = await self.probe(node)
            record = await self.heartbeat(node) if probe.ok else None
            return probe if record is not None and record.fresh else None

        try:
            return await wait_until(healthy, timeout=deadline_s, interval=0.05, what=f"node {node} healthy")
        except WaitTimeout:
            raise SubjectError(f"node {node} not healthy {deadline_s:g}s after start: /health {probe.detail}") from None

    async def ensure_running(self, node: str, deadline_s: float, unhealthy_grace_s: float = 3.0) -> str:
        """Make ``node`` run and answer ``/health``; returns what was done. Idempotent.

        supervisord notices a process death only on its next tick (up to ~1 s),
        and a just-spawned node is RUNNING before its port opens, so "RUNNING but
        unhealthy" is ambiguous: wait up to ``unhealthy_grace_s`` for it to resolve
        (health answers, or supervisord reports the death), then stop and start it.
        Looks every 0.05 s; raises SubjectError if the node is not healthy within ``deadline_s``.
        """
        loop = asyncio.get_running_loop()
        unhealthy_since: float | None = None
        actions: list[str] = []
        probe = Probe(node, False, None, "not probed", 0.0)

        async def healthy() -> str | None:
            """One look: what was done once the node is healthy; else act on what it shows (None)."""
            nonlocal probe, unhealthy_since
            probe = await self.probe(node)
            record = await self.heartbeat(node) if probe.ok else None
            if probe.ok and record is not None and record.fresh:
                return "; ".join(actions) if actions else ALREADY_HEALTHY
            state = await self.control.state(node)
            if state not in RUNNING_STATES:
                result = await self.control.start(node)
                actions.append(f"{result} (was {state})")
                unhealthy_since = None
            elif unhealthy_since is None:
                unhealthy_since = loop.time()
            elif loop.time() - unhealthy_since > unhealthy_grace_s:
                actions.append(f"stopped unresponsive process ({await self.control.stop(node)})")
                unhealthy_since = None  # stopped: the next look starts it
            return None

        try:
            return await wait_until(healthy, timeout=deadline_s, interval=0.05, what=f"node {node} healthy")
        except WaitTimeout:
            raise SubjectError(f"node {node} not healthy within {deadline_s:g}s "
                               f"({'; '.join(actions) or 'nothing done'}): /health {probe.detail}") from None

    async def restart(self, node: str, deadline_s: float) -> str:
        """Stop the node's process (SIGTERM) and start it again, even if it reads healthy; wait until healthy."""
        stopped = await self.control.stop(node)
        started = await self.ensure_running(node, deadline_s)
        return f"{stopped}; {started}"


class ClusterRole:
    """A role of the rate limiter (observer, toolbox, fault kit): it acts through one cluster,
    built from ``settings`` (default: the environment) or given (roles that share connections)."""

    def __init__(self, settings: RateLimiterSettings | None = None, *,
                 cluster: RateLimiterCluster | None = None) -> None:
        self.cluster = cluster if cluster is not None else RateLimiterCluster(settings)

    async def close(self) -> None:
        await self.cluster.close()

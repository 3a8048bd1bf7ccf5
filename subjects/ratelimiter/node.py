"""A rate limiter node: ``python -m subjects.ratelimiter.node --id node-1 --port 8101``.

Nodes are stateless: every decision is made by ``window.lua`` in the shared
Redis, so any node answers for any key. HTTP API (JSON everywhere):

- ``POST /check`` ``{"key", "cost"?}`` -> ``{"allowed", "count", "limit", "node"}``;
  200 when allowed, 429 when blocked, 404 for a key outside the policy, 503
  when Redis cannot be reached (body ``{"error", "node"}``).
- ``GET /health``: PINGs Redis; 200 ``{"status": "ok", ...}`` or 503 with the reason.
- ``GET /metrics``: Prometheus text; every series carries a ``node`` label.
- ``GET /admin/nodes``: every node known from heartbeats, with last_seen and
  up/down judged by Redis time.
- ``GET /admin/counters``: each policy key's count in the window, limit and
  future-dated entries.
- ``POST /admin/counters/{key}/reset``, ``PUT /admin/limits/{key}`` ``{"limit": n}``.
- Fault hooks, for the lab's chaos service only (served while ``fault_hooks``
  is on): ``GET /admin/faults``; ``PUT``/``DELETE /admin/faults/fail_open``
  makes this node fail open, i.e. admit every request for a policy key without
  consulting Redis (the ``ghost_allowing`` fault), or behave again. The state
  lives in the process's memory only, so a restarted node is repaired.

Heartbeats: every ``heartbeat_s`` the node writes its record (url, pid,
started_at, last_seen in Redis time) into the nodes hash. The first heartbeat
is attempted before the port opens, so a node whose ``/health`` answers 200 is
already visible as up. SIGTERM/SIGINT: stop accepting, stop the heartbeat,
close Redis, exit 0.

Arguments (each also from the environment): ``--id`` (``OPLAB_RL_NODE_ID``),
``--host`` (``OPLAB_RL_HOST``, default 127.0.0.1), ``--port`` (``OPLAB_RL_PORT``;
default: the port of this node's URL in ``OPLAB_RL_NODES``), ``--url``
(``OPLAB_RL_URL``, the address advertised in heartbeats; default: from
``OPLAB_RL_NODES``, else ``http://host:port``), ``--log-level`` (``OPLAB_LOG_LEVEL``, default INFO),
``--log-format`` (``OPLAB_LOG_FORMAT``: ``kv``, the default, or ``json``). Logging is the lab's
structured logging (:mod:`events.structured_logging`), configured as every service configures it:
one line per record on stderr, the facts as fields.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import ValidationError
from redis.exceptions import RedisError
from yarl import URL

from events.structured_logging import LogSettings, configure_logging
from subjects.ratelimiter.limiter import LimiterStore
from subjects.ratelimiter.settings import RateLimiterSettings

log = logging.getLogger("subjects.ratelimiter.node")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]



def _without_password(url: str) -> str:
    """``url`` fit for a log line: its password, if any, masked."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


class UnknownKey(LookupError):
    """A management call named a key outside the declared policy."""


@dataclass(frozen=True)
class NodeIdentity:
    node: str
    host: str
    port: int
    url: str


class Metrics:
    """The node's Prometheus series, in a registry of its own."""

    def __init__(self, node: str) -> None:
        self.registry = CollectorRegistry()
        self.checks = Counter("ratelimiter_checks_total", "Rate checks by outcome",
                              ["node", "outcome"], registry=self.registry)
        self.latency = Histogram(
            "ratelimiter_check_seconds", "Latency of a rate check (Redis round trip included)",
            ["node"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.redis_up = Gauge("ratelimiter_redis_up", "1 if the last Redis call succeeded",
                              ["node"], registry=self.registry)
        self.heartbeats = Counter("ratelimiter_heartbeats_total", "Heartbeats by result",
                                  ["node", "result"], registry=self.registry)
        self.node = node
        # labelled children resolved once: the check path is hot
        self.outcome = {o: self.checks.labels(node, o) for o in ("allowed", "blocked", "unknown_key", "error")}
        self.check_seconds = self.latency.labels(node)
        self.redis = self.redis_up.labels(node)
        self.redis.set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Node:
    """One node: the HTTP app, its Redis store and its heartbeat task."""

    def __init__(self, settings: RateLimiterSettings, ident: NodeIdentity) -> None:
        self.settings = settings
        self.ident = ident
        self.store = LimiterStore(settings)
        self.metrics = Metrics(ident.node)
        self.instance = uuid.uuid4().hex[:12]
        self._seq = count(1)
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._heartbeat_failing = False
        self.fail_open_since: float | None = None  # wall time the fail-open fault hook was set

    # -- app --------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        app.router.add_post("/check", self.check)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics_handler)
        app.router.add_get("/admin/nodes", self.admin_nodes)
        app.router.add_get("/admin/counters", self.admin_counters)
        app.router.add_post("/admin/counters/{key}/reset", self.admin_reset)
        app.router.add_put("/admin/limits/{key}", self.admin_set_limit)
        if self.settings.fault_hooks:
            app.router.add_get("/admin/faults", self.admin_faults)
            app.router.add_put("/admin/faults/fail_open", self.admin_fail_open)
            app.router.add_delete("/admin/faults/fail_open", self.admin_fail_open)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Redis failures become 503 JSON; bad input becomes 400 JSON; so do the router's own
        refusals (an unknown path, a method the path does not take): every answer is JSON."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = self._json({"error": exc.reason}, exc.status)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except UnknownKey as exc:
            return self._json({"error": str(exc)}, 404)
        except (RedisError, OSError) as exc:
            self.metrics.redis.set(0)
            return self._json({"error": f"redis unavailable: {exc}"}, 503)
        except (ValueError, TypeError, KeyError) as exc:
            return self._json({"error": f"bad request: {exc}"}, 400)

    def _json(self, body: dict[str, Any], status: int = 200) -> web.Response:
        return web.json_response({**body, "node": self.ident.node}, status=status)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise ValueError("body must be a JSON object") from exc
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    def _policy_key(self, request: web.Request) -> str:
        key = request.match_info["key"]
        if key not in self.settings.policy:
            raise UnknownKey(f"key {key} is not in the policy")
        return key

    # -- handlers ---------------------------------------------------------------

    async def check(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        key, cost = body.get("key"), body.get("cost", 1)
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty string")
        if not isinstance(cost, int) or isinstance(cost, bool) or not 1 <= cost <= 1000:
            raise ValueError("cost must be an integer in 1..1000")
        if self.fail_open_since is not None and key in self.settings.policy:
            # the ghost_allowing fault: admit without consulting Redis, and look normal doing it
            self.metrics.outcome["allowed"].inc()
            return self._json({"allowed": True, "count": 0, "limit": self.settings.policy[key]})
        member = f"{self.ident.node}:{self.instance}:{next(self._seq)}"
        start = time.perf_counter()
        try:
            result = await self.store.check(key, cost, member)
        except (RedisError, OSError):
            self.metrics.outcome["error"].inc()
            raise
        finally:
            self.metrics.check_seconds.observe(time.perf_counter() - start)
        self.metrics.redis.set(1)
        if not result.known:
            self.metrics.outcome["unknown_key"].inc()
            return self._json({"error": f"key {key} is not in the policy", "allowed": False}, 404)
        outcome = "allowed" if result.allowed else "blocked"
        self.metrics.outcome[outcome].inc()
        body_out = {"allowed": result.allowed, "count": result.count, "limit": result.limit}
        return self._json(body_out, 200 if result.allowed else 429)

    async def health(self, request: web.Request) -> web.Response:
        try:
            latency = await asyncio.wait_for(self.store.ping_ms(), self.settings.redis_timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            self.metrics.redis.set(0)
            reason = str(exc) or type(exc).__name__
            return self._json({"status": "error", "reason": f"redis: {reason}"}, 503)
        self.metrics.redis.set(1)
        return self._json({"status": "ok", "redis_ms": round(latency, 3), "pid": os.getpid(),
                           "instance": self.instance})

    async def metrics_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def admin_nodes(self, request: web.Request) -> web.Response:
        now, records = await self.store.nodes()
        known = dict.fromkeys([*self.settings.node_urls, *records])
        nodes = []
        for node in known:
            rec = records.get(node)
            if rec is None:
                nodes.append({"node": node, "url": self.settings.node_urls.get(node, ""), "pid": None,
                              "started_at": None, "last_seen": None, "age_s": None, "status": "down"})
            else:
                nodes.append(rec.as_dict())
        return self._json({"now_us": now, "down_after_s": self.settings.down_after_s, "nodes": nodes})

    async def admin_counters(self, request: web.Request) -> web.Response:
        now, counters = await self.store.counters()
        return self._json({"now_us": now, "window_s": self.settings.window_s,
                           "counters": [c.as_dict() for c in counters]})

    async def admin_reset(self, request: web.Request) -> web.Response:
        key = self._policy_key(request)
        removed = await self.store.reset(key)
        log.info("counter reset", extra={"key": key, "removed": removed})
        return self._json({"key": key, "removed": removed})

    async def admin_set_limit(self, request: web.Request) -> web.Response:
        key = self._policy_key(request)
        limit = (await self._body(request)).get("limit")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError("limit must be an integer >= 0")
        previous = await self.store.set_limit(key, limit)
        log.info("limit set", extra={"key": key, "limit": limit, "previous": previous})
        return self._json({"key": key, "limit": limit, "previous": previous})

    # -- fault hooks (chaos only) ----------------------------------------------------

    def _fault_state(self) -> dict[str, Any]:
        since = self.fail_open_since
        return {"fail_open": since is not None,
                "since": None if since is None else datetime.fromtimestamp(since, UTC).isoformat(),
                "instance": self.instance, "pid": os.getpid()}

    async def admin_faults(self, request: web.Request) -> web.Response:
        return self._json(self._fault_state())

    async def admin_fail_open(self, request: web.Request) -> web.Response:
        previous = self.fail_open_since is not None
        if request.method == "PUT":
            if not previous:
                self.fail_open_since = time.time()
                log.warning("fault hook: failing open (admitting without Redis)", extra={"node": self.ident.node})
        elif previous:
            self.fail_open_since = None
            log.warning("fault hook: fail-open cleared", extra={"node": self.ident.node})
        return self._json({**self._fault_state(), "previous": previous})

    # -- heartbeat ----------------------------------------------------------------

    async def beat(self) -> bool:
        """Write one heartbeat; True if it was stored. Logs only on state changes."""
        try:
            await self.store.heartbeat(self.ident.node, self.ident.url, os.getpid(), self.instance)
        except (RedisError, OSError) as exc:
            self.metrics.heartbeats.labels(self.ident.node, "error").inc()
            self.metrics.redis.set(0)
            if not self._heartbeat_failing:
                log.warning("heartbeat failed", extra={"node": self.ident.node, "error": str(exc)})
            self._heartbeat_failing = True
            return False
        self.metrics.heartbeats.labels(self.ident.node, "ok").inc()
        self.metrics.redis.set(1)
        if self._heartbeat_failing:
            log.info("heartbeat restored", extra={"node": self.ident.node})
        self._heartbeat_failing = False
        return True

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.settings.heartbeat_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            await self.beat()
            next_at = max(next_at, loop.time() - self.settings.heartbeat_s)

    async def start(self) -> web.AppRunner:
        """Seed limits, beat once, open the port, start heartbeating. Works with Redis down."""
        try:
            await self.store.seed_limits()
        except (RedisError, OSError) as exc:
            log.warning("could not seed limits (redis down?)", extra={"node": self.ident.node, "error": str(exc)})
        await self.beat()
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.ident.host, self.ident.port, reuse_address=True)
        await site.start()
        self._heartbeat_task = asyncio.create_task(self._heartbeats(), name="heartbeat")
        log.info("node started", extra={
            "node": self.ident.node, "listen": f"{self.ident.host}:{self.ident.port}", "url": self.ident.url,
            "pid": os.getpid(), "redis": _without_password(self.settings.redis_url),
            "prefix": self.settings.key_prefix})
        return runner

    async def stop(self, runner: web.AppRunner) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
        await runner.cleanup()
        await self.store.close()
        log.info("node stopped", extra={"node": self.ident.node})


def identity(settings: RateLimiterSettings, node: str, host: str, port: int | None,
             url: str | None) -> NodeIdentity:
    """Resolve port and advertised URL from the arguments and the configured node list."""
    configured = settings.node_urls.get(node)
    if port is None:
        if configured is None:
            raise SystemExit(f"--port is required: node {node!r} is not in OPLAB_RL_NODES")
        port = urlparse(configured).port
        if port is None:
            raise SystemExit(f"cannot read a port from {configured!r}; pass --port")
    return NodeIdentity(node=node, host=host, port=port, url=url or configured or f"http://{host}:{port}")


async def serve(settings: RateLimiterSettings, ident: NodeIdentity) -> None:
    """Run a node until SIGTERM or SIGINT."""
    node = Node(settings, ident)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await node.start()
    try:
        await stop.wait()
        log.info("signal received, stopping", extra={"node": ident.node})
    finally:
        await node.stop(runner)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m subjects.ratelimiter.node", description=__doc__.split("\n")[0])
    p.add_argument("--id", dest="node", default=env("OPLAB_RL_NODE_ID"), help="node id (e.g. node-1)")
    p.add_argument("--host", default=env("OPLAB_RL_HOST", "127.0.0.1"), help="address to listen on")
    p.add_argument("--port", type=int, default=int(env("OPLAB_RL_PORT", "0")) or None)
    p.add_argument("--url", default=env("OPLAB_RL_URL"), help="address advertised in heartbeats")
    # the lab's one logging configuration (OPLAB_LOG_FORMAT, OPLAB_LOG_LEVEL), as the services read it
    try:
        logs = LogSettings()
    except ValidationError as exc:
        p.error(f"bad logging settings: {exc}")
    p.add_argument("--log-level", default=logs.log_level, help="logging level (default: $OPLAB_LOG_LEVEL or INFO)")
    p.add_argument("--log-format", choices=("kv", "json"), default=logs.log_format,
                   help="key=value or JSON lines (default: $OPLAB_LOG_FORMAT or kv)")
    args = p.parse_args(argv)
    if not args.node:
        p.error("--id (or OPLAB_RL_NODE_ID) is required")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    settings = RateLimiterSettings()
    ident = identity(settings, args.node, args.host, args.port, args.url)
    asyncio.run(serve(settings, ident))


if __name__ == "__main__":
    main()


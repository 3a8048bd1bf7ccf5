"""The agent's typed tools for the rate limiter.

Read-only: ``list_nodes``, ``node_status``, ``read_counters``, ``read_policy``,
``redis_info``. Mutating: ``reset_counter``, ``prune_counter``, ``set_limit``
(policy keys only), ``restart_node`` (lab nodes only), ``unpause_redis`` and
``set_memory_limit`` (the lab's Redis; fixed commands, the latter restores the
declared configuration and takes no value). Each takes a pydantic argument
model with ``extra="forbid"``; none runs a shell or an arbitrary Redis command.
Targets outside the lab and values outside the allowed bounds raise
:class:`RefusedError` and change nothing; a failure to act raises
:class:`SubjectError` with the reason. Every Redis call is bounded by the
client's timeouts, so a paused or hung Redis makes a tool fail or report it,
never hang.

Every mutating tool names what a call acts on (``acts_on``) in the fault kit's
target vocabulary: ``restart_node`` the node id and the key tools the key (the
argument their ``target_arg`` declares), the Redis tools ``redis`` - so a score
can tell a remedy of the faulty entity from one of a healthy entity.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from subjects.contract import Arguments, RefusedError, SubjectError, Tool
from subjects.ratelimiter.backend import (
    REDIS_TARGET,
    describe_redis_error,
    guarded,
    out_of_memory,
    paused_actions,
)
from subjects.ratelimiter.cluster import RateLimiterCluster


class KeyArgs(Arguments):
    key: str = Field(description="a policy key, e.g. user:alice")


class NodeArgs(Arguments):
    node: str = Field(description="a node id, e.g. node-2")


class RestartArgs(NodeArgs):
    force: bool = Field(default=False, description=(
        "stop and start the node even if it reads healthy; default: only start or restart a node that "
        "is down or unhealthy"))


class SetLimitArgs(KeyArgs):
    limit: int | None = Field(default=None, ge=0, description=(
        "the new limit per window; default: the declared policy's limit for the key. Other values must "
        "lie within a quarter and four times the declared limit"))


class RateLimiterTool(Tool):
    """A rate limiter tool: holds the cluster it acts through."""

    def __init__(self, cluster: RateLimiterCluster) -> None:
        self.cluster = cluster


class KeyTool(RateLimiterTool):
    """A mutating tool on one policy key, named in its arguments (``KeyArgs`` or a subclass): a key the
    policy does not declare is refused before :meth:`on_key` runs. It acts on the key (the fault kit's
    key targets)."""

    args_model = KeyArgs
    mutating = True
    target_arg = "key"

    async def run(self, args: BaseModel) -> Any:
        assert isinstance(args, KeyArgs)
        return await self.on_key(self.cluster.require_key(args.key), args)

    @abc.abstractmethod
    async def on_key(self, key: str, args: KeyArgs) -> dict[str, Any]:
        """Act on ``key`` (a declared policy key); the call's result."""


class RedisTool(RateLimiterTool):
    """A mutating tool on the lab's Redis: it acts on ``redis`` (the fault kit's server target)."""

    mutating = True

    def acts_on(self, args: BaseModel) -> str | None:
        return REDIS_TARGET


class ListNodes(RateLimiterTool):
    name = "list_nodes"
    description = (
        "List the rate limiter nodes: status up/down (from heartbeats judged by Redis time and a /health "
        "probe), last heartbeat, pid, detail, and the supervisor's process state for each."
    )

    async def run(self, args: BaseModel) -> Any:
        views = await self.cluster.node_views()

        async def process_state(node: str) -> str:
            try:
                return await self.cluster.control.state(node)
            except SubjectError as exc:
                return f"unknown ({exc})"

        states = await asyncio.gather(*(process_state(v.node) for v, _ in views))
        return {
            "nodes": [
                {**view.model_dump(mode="json", exclude={"state"}), **facts.model_dump(mode="json"),
                 "process": state}
                for (view, facts), state in zip(views, states, strict=True)
            ]
        }


class ReadCounters(RateLimiterTool):
    name = "read_counters"
    description = (
        "Read every policy key's sliding window: requests counted in the window, the limit, and how many "
        "entries are dated in the future."
    )

    async def run(self, args: BaseModel) -> Any:
        _, counters = await guarded("read_counters", self.cluster.store.counters())
        return {"window_s": self.cluster.settings.window_s, "counters": [c.as_dict() for c in counters]}


class ReadPolicy(RateLimiterTool):
    name = "read_policy"
    description = "Read the declared policy (key -> limit per window) and the limits currently in force."

    async def run(self, args: BaseModel) -> Any:
        effective = await guarded("read_policy", self.cluster.store.limits())
        return {"window_s": self.cluster.settings.window_s, "declared": dict(self.cluster.settings.policy),
                "effective": effective}


class ResetCounter(KeyTool):
    name = "reset_counter"
    description = "Empty one policy key's window (every entry, legitimate or not). Mutating."

    async def on_key(self, key: str, args: KeyArgs) -> dict[str, Any]:
        removed = await guarded("reset_counter", self.cluster.store.reset(key))
        return {"key": key, "removed": removed}


class PruneCounter(KeyTool):
    name = "prune_counter"
    description = (
        "Remove from one policy key's window the entries dated in the future and those older than the "
        "window, keeping the legitimate recent ones. Mutating."
    )

    async def on_key(self, key: str, args: KeyArgs) -> dict[str, Any]:
        result = await guarded("prune_counter", self.cluster.store.prune(key))
        return {"key": key, **result}


class RestartNode(RateLimiterTool):
    name = "restart_node"
    description = (
        "Make a node run again through the process supervisor: start it if its process is not running, "
        "stop and start it if it runs but stays unhealthy (with force: stop and start it in any case, which "
        "clears whatever state its process held), then wait until its /health answers and its heartbeat "
        "is fresh. The restart is announced as planned maintenance while it lasts. Mutating."
    )
    args_model = RestartArgs
    mutating = True
    target_arg = "node"

    async def run(self, args: BaseModel) -> Any:
        assert isinstance(args, RestartArgs)
        node = self.cluster.require_node(args.node)
        previous = await self.cluster.control.state(node)
        previous_pid = await self.cluster.control.pid(node)
        deadline = self.cluster.settings.restart_deadline_s
        # announce the planned restart (bounded, best effort): its own downtime is no incident
        store = self.cluster.store
        try:
            await store.set_maintenance(node, deadline + 2.0, "restart_node")
            announced = True
        except (RedisError, OSError):
            announced = False
        try:
            if args.force:
                action = await self.cluster.restart(node, deadline)
            else:
                action = await self.cluster.ensure_running(node, deadline)
        finally:
            if announced:
                with contextlib.suppress(RedisError, OSError):
                    await store.clear_maintenance(node)
        return {"node": node, "action": action, "previous_state": previous, "previous_pid": previous_pid,
                "state": await self.cluster.control.state(node), "pid": await self.cluster.control.pid(node),
                "announced": announced}


class NodeStatus(RateLimiterTool):
    name = "node_status"
    description = (
        "One node in detail: its /health answer, the supervisor's process state, its last heartbeat, and "
        "the rate checks it has decided since it started, by outcome (allowed, blocked, error), from its "
        "own metrics."
    )
    args_model = NodeArgs

    async def run(self, args: BaseModel) -> Any:
        assert isinstance(args, NodeArgs)
        node = self.cluster.require_node(args.node)
        probe_task = asyncio.ensure_future(self.cluster.probe(node))
        metrics_task = asyncio.ensure_future(self._metrics(node))
        try:
            process: str = await self.cluster.control.state(node)
            pid = await self.cluster.control.pid(node)
        except SubjectError as exc:
            process, pid = f"unknown ({exc})", None
        record = await self.cluster.heartbeat(node)
        probe, metrics = await asyncio.gather(probe_task, metrics_task)
        return {
            "node": node,
            "health": {"ok": probe.ok, "status": probe.status, "detail": probe.detail,
                       "latency_ms": round(probe.latency_ms, 3)},
            "process": process,
            "pid": pid,
            "heartbeat": record.as_dict() if record is not None else None,
            "checks": metrics,
        }

    async def _metrics(self, node: str) -> dict[str, Any]:
        try:
            text = await self.cluster.node_text(node, "/metrics")
        except SubjectError as exc:
            return {"error": str(exc)}
        outcomes: dict[str, int] = {}
        for family in text_string_to_metric_families(text):
            if family.name == "ratelimiter_checks":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        outcomes[sample.labels.get("outcome", "?")] = int(sample.value)
        decided = outcomes.get("allowed", 0) + outcomes.get("blocked", 0)
        return {"since_start": outcomes,
                "blocked_ratio": round(outcomes.get("blocked", 0) / decided, 3) if decided else None}


class RedisInfo(RateLimiterTool):
    name = "redis_info"
    description = (
        "The lab's Redis as an operator sees it: reachable or not, PING latency, whether a write is accepted "
        "now (ok, timeout = writes paused or hung, oom = out of memory), CLIENT PAUSE state, memory in use "
        "against maxmemory and its policy, compared with the lab's declared memory configuration, and a few "
        "INFO fields. Never hangs: an unreachable Redis is reported, not raised."
    )

    async def run(self, args: BaseModel) -> Any:
        settings, backend = self.cluster.settings, self.cluster.backend
        declared = {"maxmemory": settings.redis_maxmemory, "maxmemory_policy": settings.redis_maxmemory_policy}
        write_task = asyncio.ensure_future(backend.write_probe())
        try:
            ping_ms = await self.cluster.store.ping_ms()
            info = await backend.info()
        except (RedisError, OSError) as exc:
            write = await write_task
            return {"reachable": False, "error": describe_redis_error(exc), "address": self.cluster.redis_address(),
                    "write": write.as_dict(), "declared": declared}
        write = await write_task
        paused = paused_actions(info)
        memory = {k: info.get(k) for k in ("used_memory", "used_memory_human", "maxmemory", "maxmemory_human",
                                          "maxmemory_policy")}
        return {
            "reachable": True,
            "address": self.cluster.redis_address(),
            "ping_ms": round(ping_ms, 3),
            "write": write.as_dict(),
            "paused": paused is not None or write.kind == "timeout",
            "paused_actions": paused,
            "paused_timeout_ms": info.get("paused_timeout_milliseconds"),
            "out_of_memory": out_of_memory(info) or write.kind == "oom",
            "memory": memory,
            "declared": declared,
            "memory_matches_declared": (info.get("maxmemory") == declared["maxmemory"]
                                        and info.get("maxmemory_policy") == declared["maxmemory_policy"]),
            "info": {k: info[k] for k in ("redis_version", "valkey_version", "uptime_in_seconds",
                                          "connected_clients", "blocked_clients", "instantaneous_ops_per_sec",
                                          "role") if k in info},
        }


class UnpauseRedis(RedisTool):
    name = "unpause_redis"
    description = (
        "Lift a CLIENT PAUSE on the lab's Redis (CLIENT UNPAUSE), then check that a write is accepted. "
        "Harmless when nothing is paused. Mutating."
    )

    async def run(self, args: BaseModel) -> Any:
        backend = self.cluster.backend
        try:
            before = paused_actions(await backend.info())
        except (RedisError, OSError):
            before = None
        await guarded("unpause_redis", backend.unpause())
        write = await backend.write_probe()
        return {"unpaused": True, "paused_before": before, "writable": write.ok, "write": write.as_dict()}


class SetMemoryLimit(RedisTool):
    name = "set_memory_limit"
    description = (
        "Restore the lab's declared Redis memory configuration (maxmemory and maxmemory-policy, from the lab "
        "settings; takes no value), then check that a write is accepted. Mutating."
    )

    async def run(self, args: BaseModel) -> Any:
        settings, backend = self.cluster.settings, self.cluster.backend
        previous = await guarded("set_memory_limit", backend.memory_config())
        await guarded("set_memory_limit", backend.set_memory_config(settings.redis_maxmemory,
                                                                   settings.redis_maxmemory_policy))
        now = await guarded("set_memory_limit", backend.memory_config())
        used = await guarded("set_memory_limit", backend.used_memory())
        write = await backend.write_probe()
        return {"previous": previous, "now": now, "used_memory": used, "writable": write.ok,
                "write": write.as_dict()}


class SetLimit(KeyTool):
    name = "set_limit"
    description = (
        "Set the limit in force for one policy key: by default back to the declared policy's value; another "
        "value must lie within a quarter and four times the declared limit. Mutating."
    )
    args_model = SetLimitArgs

    async def on_key(self, key: str, args: KeyArgs) -> dict[str, Any]:
        assert isinstance(args, SetLimitArgs)
        declared = self.cluster.settings.policy[key]
        limit = declared if args.limit is None else args.limit
        low, high = math.ceil(declared / 4), declared * 4
        if limit != declared and not (max(1, low) <= limit <= high):
            raise RefusedError(f"limit {limit} for {key} is outside the allowed range {max(1, low)}..{high} "
                               f"(declared {declared}); pass no limit to restore the declared one")
        previous = await guarded("set_limit", self.cluster.store.set_limit(key, limit))
        return {"key": key, "limit": limit, "previous": previous, "declared": declared}


TOOL_TYPES: tuple[type[RateLimiterTool], ...] = (
    ListNodes, NodeStatus, ReadCounters, ReadPolicy, RedisInfo, ResetCounter, PruneCounter, SetLimit,
    RestartNode, UnpauseRedis, SetMemoryLimit)
"""Read-only tools first, then the mutating ones."""

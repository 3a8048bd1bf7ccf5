"""The agent's typed tools for the rate limiter.

Read-only: ``list_nodes``, ``read_counters``, ``read_policy``. Mutating:
``reset_counter``, ``prune_counter`` (policy keys only) and ``restart_node``
(lab nodes only). Each takes a pydantic argument model with ``extra="forbid"``;
none runs a shell or an arbitrary Redis command. Targets outside the lab raise
:class:`RefusedError` and change nothing; a failure to act raises
:class:`AdapterError` with the reason.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from subjects.base import AdapterError, Tool

if TYPE_CHECKING:
    from subjects.ratelimiter.adapter import RateLimiterAdapter


class KeyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(description="a policy key, e.g. user:alice")


class NodeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str = Field(description="a node id, e.g. node-2")


class _RateLimiterTool(Tool):
    def __init__(self, adapter: RateLimiterAdapter) -> None:
        self.adapter = adapter


async def _redis(what: str, coro: Any) -> Any:
    try:
        return await coro
    except (RedisError, OSError) as exc:
        raise AdapterError(f"{what}: redis unavailable: {exc}") from exc


class ListNodes(_RateLimiterTool):
    name = "list_nodes"
    description = (
        "List the rate limiter nodes: status up/down (from heartbeats judged by Redis time and a /health "
        "probe), last heartbeat, pid, detail, and the supervisor's process state for each."
    )

    async def run(self, args: BaseModel) -> Any:
        views = await self.adapter.node_views()

        async def process_state(node: str) -> str:
            try:
                return await self.adapter.control.state(node)
            except AdapterError as exc:
                return f"unknown ({exc})"

        states = await asyncio.gather(*(process_state(v.node) for v in views))
        return {
            "nodes": [
                {**v.model_dump(mode="json"), "process": state}
                for v, state in zip(views, states, strict=True)
            ]
        }


class ReadCounters(_RateLimiterTool):
    name = "read_counters"
    description = (
        "Read every policy key's sliding window: requests counted in the window, the limit, and how many "
        "entries are dated in the future (no correct writer produces those)."
    )

    async def run(self, args: BaseModel) -> Any:
        _, counters = await _redis("read_counters", self.adapter.store.counters())
        return {"window_s": self.adapter.settings.window_s, "counters": [c.as_dict() for c in counters]}


class ReadPolicy(_RateLimiterTool):
    name = "read_policy"
    description = "Read the declared policy (key -> limit per window) and the limits currently in force."

    async def run(self, args: BaseModel) -> Any:
        effective = await _redis("read_policy", self.adapter.store.limits())
        return {"window_s": self.adapter.settings.window_s, "declared": dict(self.adapter.settings.policy),
                "effective": effective}


class ResetCounter(_RateLimiterTool):
    name = "reset_counter"
    description = "Empty one policy key's window (every entry, legitimate or not). Mutating."
    args_model = KeyArgs
    mutating = True

    async def run(self, args: BaseModel) -> Any:
        assert isinstance(args, KeyArgs)
        key = self.adapter.require_key(args.key)
        removed = await _redis("reset_counter", self.adapter.store.reset(key))
        return {"key": key, "removed": removed}


class PruneCounter(_RateLimiterTool):
    name = "prune_counter"
    description = (
        "Remove from one policy key's window the entries dated in the future and those older than the "
        "window, keeping the legitimate recent ones. Mutating."
    )
    args_model = KeyArgs
    mutating = True

    async def run(self, args: BaseModel) -> Any:
        assert isinstance(args, KeyArgs)
        key = self.adapter.require_key(args.key)
        result = await _redis("prune_counter", self.adapter.store.prune(key))
        return {"key": key, **result}


class RestartNode(_RateLimiterTool):
    name = "restart_node"
    description = (
        "Make a node run again through the process supervisor: start it if its process is not running, "
        "stop and start it if it runs but stays unhealthy, then wait until its /health answers and its "
        "heartbeat is fresh. Mutating."
    )
    args_model = NodeArgs
    mutating = True

    async def run(self, args: BaseModel) -> Any:
        assert isinstance(args, NodeArgs)
        node = self.adapter.require_node(args.node)
        previous = await self.adapter.control.state(node)
        action = await self.adapter.ensure_running(node, self.adapter.settings.restart_deadline_s)
        return {"node": node, "action": action, "previous_state": previous,
                "state": await self.adapter.control.state(node), "pid": await self.adapter.control.pid(node)}


def tools(adapter: RateLimiterAdapter) -> list[Tool]:
    return [ListNodes(adapter), ReadCounters(adapter), ReadPolicy(adapter), ResetCounter(adapter),
            PruneCounter(adapter), RestartNode(adapter)]

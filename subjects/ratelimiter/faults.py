"""Real faults for the rate limiter, each with proof of effect and an idempotent undo.

- ``node_kill``: SIGKILL one node's process through supervisord. Programs run
  with ``autorestart=false``, so the node stays down until started again.
  Undo ``{"node"}``: start it if it is not running.
- ``counter_drift``: write ``factor`` x limit bogus entries into a live key's
  window, dated ``ahead_s`` (default one hour) after Redis now, as a writer
  with a clock far ahead would. They never age out of the window, so the key
  reads over its limit and its real traffic is blocked. Undo ``{"key",
  "members"}``: ZREM exactly those members, nothing else.

Targets outside the lab (unknown node or key) raise :class:`RefusedError`
before anything is touched.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from subjects.base import AdapterError, Fault, Injection, NoArgs, RefusedError
from subjects.ratelimiter.control import RUNNING_STATES

if TYPE_CHECKING:
    from subjects.ratelimiter.adapter import RateLimiterAdapter


class _RateLimiterFault(Fault):
    def __init__(self, adapter: RateLimiterAdapter) -> None:
        self.adapter = adapter


class NodeKill(_RateLimiterFault):
    kind = "node_kill"
    description = "SIGKILL one rate limiter node's process; it stays down until started again"
    params_model = NoArgs
    default_ttl_s = 60.0

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        control = self.adapter.control
        if target is None:
            target = await self._pick()
        node = self.adapter.require_node(target)
        state = await control.state(node)
        if state not in RUNNING_STATES:
            raise RefusedError(f"node {node} is not running (state {state}): nothing to kill")
        pid = await control.kill(node)
        return Injection(target=node, undo={"node": node, "pid": pid})

    async def _pick(self) -> str:
        """The first lab node whose process runs and whose /health answers."""
        for node in self.adapter.settings.node_urls:
            try:
                if await self.adapter.control.state(node) in RUNNING_STATES and (
                    await self.adapter.probe(node)
                ).ok:
                    return node
            except AdapterError:
                continue
        raise RefusedError("no running, healthy node to kill")

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        node = injection.target
        probe = await self.adapter.probe(node)
        if probe.ok:
            return None
        record = await self.adapter.heartbeat(node)
        return {
            "node": node,
            "health": probe.detail,
            "process": await self._state(node),
            "last_seen": record.as_dict()["last_seen"] if record else None,
            "heartbeat_age_s": round(record.age_s, 3) if record and record.age_s is not None else None,
        }

    async def _state(self, node: str) -> str:
        try:
            return await self.adapter.control.state(node)
        except AdapterError as exc:
            return f"unknown ({exc})"

    async def revert(self, undo: dict[str, Any]) -> str:
        node = self.adapter.require_node(str(undo.get("node", "")))
        action = await self.adapter.ensure_running(node, self.adapter.settings.restart_deadline_s)
        return f"node {node}: {action}"


class DriftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float = Field(default=3.0, gt=0, le=20, description="bogus entries as a multiple of the limit")
    ahead_s: float = Field(default=3600.0, gt=0, le=30 * 24 * 3600,
                           description="how far after Redis now the bogus entries are dated")


class CounterDrift(_RateLimiterFault):
    kind = "counter_drift"
    description = "write bogus future-dated entries into a live key's window so it reads over its limit"
    params_model = DriftParams
    default_ttl_s = 60.0

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        p = params if isinstance(params, DriftParams) else DriftParams.model_validate(params.model_dump())
        key = self.adapter.require_key(target if target is not None else next(iter(self.adapter.settings.policy)))
        try:
            limit = (await self.adapter.store.limits())[key]
            n = max(1, round(p.factor * max(limit, 1)))
            token = secrets.token_hex(4)
            members = [f"drift:{token}:{i}" for i in range(n)]
            await self.adapter.store.add_future_entries(key, members, p.ahead_s)
        except (RedisError, OSError) as exc:
            raise AdapterError(f"counter_drift on {key}: redis unavailable: {exc}") from exc
        return Injection(target=key, undo={"key": key, "members": members})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        try:
            _, counters = await self.adapter.store.counters([injection.target])
        except (RedisError, OSError) as exc:
            raise AdapterError(f"counter_drift: redis unavailable: {exc}") from exc
        counter = counters[0]
        if counter.count <= counter.limit:
            return None
        return counter.as_dict()

    async def revert(self, undo: dict[str, Any]) -> str:
        key = self.adapter.require_key(str(undo.get("key", "")))
        members = [str(m) for m in undo.get("members", [])]
        try:
            removed = await self.adapter.store.remove_members(key, members)
        except (RedisError, OSError) as exc:
            raise AdapterError(f"counter_drift revert on {key}: redis unavailable: {exc}") from exc
        return f"removed {removed} of {len(members)} bogus entries from {key}"


def faults(adapter: RateLimiterAdapter) -> list[Fault]:
    return [NodeKill(adapter), CounterDrift(adapter)]

"""Faults on Redis itself (target ``redis``): ``redis_pause`` and ``redis_oom``.

- ``redis_pause``: ``CLIENT PAUSE <pause_s> WRITE`` (a self-expiring safety net,
  300 s by default). Every check is a write, so every check stalls until the
  node's Redis timeout and fails. ``ALL`` is not used because it would also
  postpone ``CLIENT UNPAUSE``. Proof: a write probe times out. Undo: ``CLIENT
  UNPAUSE``.
- ``redis_oom``: ``maxmemory-policy noeviction`` and ``maxmemory`` set to
  ``fraction`` (0.5) of the memory in use, so Redis refuses writes with OOM.
  Proof: a write probe is refused with OOM. Undo ``{"maxmemory",
  "maxmemory_policy"}``: the values read with CONFIG GET before.

From the target alone: unpause, or restore the *declared* memory configuration
(the values before are unknown).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, Field

from subjects.contract import RefusedError
from subjects.contract.fault_kit import Injection, Reverted
from subjects.ratelimiter.backend import WriteKind, guarded, paused_actions
from subjects.ratelimiter.faults.base import P, RateLimiterFault
from subjects.ratelimiter.settings import RateLimiterSettings


class RedisFault(RateLimiterFault[P]):
    """A fault on Redis itself (target ``redis``). Proof: the write probe fails the way the fault makes
    every write fail (``writes_fail_as``), with what Redis says of the fault (:meth:`redis_state`)."""

    target_kind = "redis"
    writes_fail_as: ClassVar[WriteKind]

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        write = await self.cluster.backend.write_probe()
        if write.kind != self.writes_fail_as:
            return None
        return {"write": write.as_dict(), **await self.redis_state()}

    @abc.abstractmethod
    async def redis_state(self) -> dict[str, Any]:
        """Redis's own account of what the fault changed, for the proof."""


class PauseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pause_s: float = Field(default=300.0, gt=0, le=3600, description=(
        "how long Redis keeps the pause by itself if nobody lifts it: a safety net, the TTL revert or a "
        "remedy lifts it earlier"))


class RedisPause(RedisFault[PauseParams]):
    kind = "redis_pause"
    detected_by = "redis_unavailable"
    description = "pause Redis for writes (CLIENT PAUSE WRITE): every rate check, being a write, stalls"
    writes_fail_as = "timeout"

    async def inject_into(self, target: str, p: PauseParams) -> Injection:
        backend = self.cluster.backend
        already = paused_actions(await guarded("redis_pause", backend.info()))
        if already is not None:
            raise RefusedError(f"Redis is already paused ({already}); not stacking a second pause")
        pause_ms = round(p.pause_s * 1000)
        await guarded("redis_pause", backend.pause_writes(pause_ms))
        return Injection(target=target, undo={"pause_ms": pause_ms})

    async def redis_state(self) -> dict[str, Any]:
        info = await guarded("redis_pause", self.cluster.backend.info())
        return {"paused_actions": info.get("paused_actions"),
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


class RedisOom(RedisFault[OomParams]):
    kind = "redis_oom"
    detected_by = "error_rate"
    description = "lower Redis maxmemory below the memory in use, with noeviction: writes (every check) fail"
    writes_fail_as = "oom"

    async def inject_into(self, target: str, p: OomParams) -> Injection:
        backend = self.cluster.backend
        before = await guarded("redis_oom", backend.memory_config())
        used = await guarded("redis_oom", backend.used_memory())
        if 0 < before["maxmemory"] < used:
            raise RefusedError(f"Redis is already over its maxmemory ({used} > {before['maxmemory']})")
        limit = max(1, int(used * p.fraction))
        await guarded("redis_oom", backend.set_memory_config(limit, "noeviction"))
        return Injection(target=target, undo={**before, "set_to": limit})

    async def redis_state(self) -> dict[str, Any]:
        backend = self.cluster.backend
        config = await guarded("redis_oom", backend.memory_config())
        return {**config, "used_memory": await guarded("redis_oom", backend.used_memory())}

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

"""Faults on one policy key (:class:`KeyFault`): ``counter_drift`` and ``limit_misconfig``.

- ``counter_drift``: write ``factor`` x limit bogus entries into a live key's
  window, dated ``ahead_s`` (default one hour) after Redis now, as a writer
  with a clock far ahead would. They never age out of the window, so the key
  reads over its limit and its real traffic is blocked. Undo ``{"key",
  "members"}``: ZREM exactly those members, nothing else.
- ``limit_misconfig``: a key's limit set to ``factor`` (0.25) x its current
  value, or to ``limit``, through a node's management API. Proof: the limit in
  force is the wrong one. Undo ``{"key", "previous"}``: the limit before.

``counter_drift`` cannot derive an undo from the target alone (its undo names
the exact entries it wrote; the ``future_dated_entries`` invariant surfaces them
and ``prune_counter`` removes them); ``limit_misconfig`` restores the *declared*
limit (the one before is unknown).
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from subjects.contract import RefusedError, SubjectError
from subjects.contract.fault_kit import Injection, Reverted
from subjects.ratelimiter.backend import guarded
from subjects.ratelimiter.faults.base import P, RateLimiterFault


class KeyFault(RateLimiterFault[P]):
    """A fault on one policy key (target ``key``; default: the first), which it acts on relative to the
    limit the nodes enforce on that key now (:meth:`limit_in_force`)."""

    target_kind = "key"

    async def limit_in_force(self, key: str) -> int:
        """``key``'s limit as Redis holds it now (the one the nodes enforce, not the declared one)."""
        return (await guarded(f"{self.kind} on {key}", self.cluster.store.limits()))[key]

    def undo_target(self, undo: dict[str, Any]) -> str:
        """The key ``undo`` names (under ``key``), refused (RefusedError) when the policy does not declare it."""
        return self.cluster.require_key(str(undo.get("key", "")))


class DriftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float = Field(default=3.0, gt=0, le=20, description="bogus entries as a multiple of the limit")
    ahead_s: float = Field(default=3600.0, gt=0, le=30 * 24 * 3600,
                           description="how far after Redis now the bogus entries are dated")


class CounterDrift(KeyFault[DriftParams]):
    kind = "counter_drift"
    detected_by = "future_dated_entries"
    description = "write bogus future-dated entries into a live key's window so it reads over its limit"

    async def inject_into(self, key: str, p: DriftParams) -> Injection:
        limit = await self.limit_in_force(key)
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
        key = self.undo_target(undo)
        members = [str(m) for m in undo.get("members", [])]
        removed = await guarded(f"counter_drift revert on {key}", self.cluster.store.remove_members(key, members))
        return Reverted(f"removed {removed} of {len(members)} bogus entries from {key}", changed=removed > 0)


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


class LimitMisconfig(KeyFault[MisconfigParams]):
    kind = "limit_misconfig"
    detected_by = "limit_policy_drift"
    description = "change a key's limit to a wrong value through a node's management API"

    async def inject_into(self, key: str, p: MisconfigParams) -> Injection:
        current = await self.limit_in_force(key)
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
        live = await self.limit_in_force(key)
        if live != set_to:
            return None
        return {"key": key, "limit": live, "declared": self.cluster.settings.policy[key],
                "previous": injection.undo.get("previous")}

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        """The limit before is unknown: the declared policy's limit stands in for it."""
        limit = self.cluster.settings.policy.get(target)
        return None if limit is None else {"key": target, "previous": limit}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        key = self.undo_target(undo)
        previous = undo.get("previous")
        if not isinstance(previous, int) or previous < 0:
            raise RefusedError(f"bad undo data for limit_misconfig: {undo!r}")
        try:
            node, was = await self._put(key, previous)
        except (RefusedError, SubjectError):  # no node answers: the shared state is reachable directly
            was = await guarded("limit_misconfig revert", self.cluster.store.set_limit(key, previous))
            node = "redis"
        return Reverted(f"limit of {key} restored to {previous} (was {was}; via {node})", changed=was != previous)

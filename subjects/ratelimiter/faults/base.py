"""What every rate limiter fault shares: the cluster it acts through, how it resolves a target, its parameters."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from subjects.contract.fault_kit import Fault
from subjects.ratelimiter.cluster import RateLimiterCluster

P = TypeVar("P", bound=BaseModel)


def params_as(model: type[P], params: BaseModel) -> P:
    """``params`` as the fault's own ``model``: as given when it is one, else validated from its fields
    (a caller may hand over another model with the same fields; a bad value raises ValidationError
    before anything is touched)."""
    return params if isinstance(params, model) else model.model_validate(params.model_dump())


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

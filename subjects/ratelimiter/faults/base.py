"""What every rate limiter fault shares: the cluster it acts through, how it resolves a target, its parameters.

:meth:`RateLimiterFault.inject` checks a request before anything is touched (the parameters validated
as the fault's ``params_model``, the target resolved and refused when outside the lab), then hands
both to the fault's own :meth:`~RateLimiterFault.inject_into`. A revert checks the node or key its
undo names the same way (``NodeFault.undo_target``, ``KeyFault.undo_target``): undo data comes back
from the log.
"""

from __future__ import annotations

import abc
from typing import Any, Generic, TypeVar, cast, get_args, get_origin

from pydantic import BaseModel

from subjects.contract.fault_kit import Fault, Injection
from subjects.ratelimiter.cluster import RateLimiterCluster

P = TypeVar("P", bound=BaseModel)


def params_as(model: type[P], params: BaseModel) -> P:
    """``params`` as the fault's own ``model``: as given when it is one, else validated from its fields
    (a caller may hand over another model with the same fields; a bad value raises ValidationError
    before anything is touched)."""
    return params if isinstance(params, model) else model.model_validate(params.model_dump())


def _params_named_by(cls: type) -> type[BaseModel] | None:
    """The model that ``cls``'s own bases give a rate limiter fault as ``P`` (``RateLimiterFault[DriftParams]``,
    ``RedisFault[PauseParams]``), if they give one (not a type variable)."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin, args = get_origin(base), get_args(base)
        if isinstance(origin, type) and issubclass(origin, RateLimiterFault) and args:
            named = args[0]
            if isinstance(named, type) and issubclass(named, BaseModel):
                return named
    return None


class RateLimiterFault(Fault, Generic[P]):
    """A rate limiter fault whose parameters are a ``P`` (its ``params_model``): holds the cluster it acts through.

    ``target_kind`` says what it breaks: a ``node`` (default: the first healthy
    one), a policy ``key`` (default: the first) or ``redis``. A fault names its
    parameters' model once, as ``P`` (``class CounterDrift(RateLimiterFault[DriftParams])``):
    that is its ``params_model``.
    """

    target_kind: str = "node"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        named = _params_named_by(cls)
        if named is None:
            return
        declared = cls.__dict__.get("params_model")
        if declared is not None and declared is not named:  # two answers to one question: say so, pick none
            raise TypeError(f"{cls.__name__} names {named.__name__} as its parameters (P) but declares "
                            f"params_model = {declared.__name__}")
        cls.params_model = named

    def __init__(self, cluster: RateLimiterCluster) -> None:
        self.cluster = cluster

    async def resolve_target(self, target: str | None) -> str:
        if self.target_kind == "node":
            return self.cluster.require_node(target if target is not None else await self.cluster.pick_healthy_node())
        if self.target_kind == "key":
            return self.cluster.require_key(target if target is not None else self.cluster.first_key())
        return str(self.cluster.require_redis(target))

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        """Validate ``params`` and resolve ``target`` (either may refuse: nothing is touched yet), then
        :meth:`inject_into` the target."""
        p = cast(P, params_as(self.params_model, params))
        return await self.inject_into(await self.resolve_target(target), p)

    @abc.abstractmethod
    async def inject_into(self, target: str, p: P, /) -> Injection:
        """Break ``target`` (resolved: part of the lab) as ``p`` says."""


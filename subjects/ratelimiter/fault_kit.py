"""The rate limiter's fault kit (the chaos service's role): the seven faults and the lab's targets."""

from __future__ import annotations

from subjects.contract import Fault, FaultKit
from subjects.ratelimiter.cluster import RateLimiterCluster
from subjects.ratelimiter.faults import FAULT_TYPES
from subjects.ratelimiter.settings import RateLimiterSettings


class RateLimiterFaultKit(FaultKit):
    """Faults acting on one :class:`RateLimiterCluster`; targets are its nodes, policy keys and ``redis``."""

    def __init__(self, settings: RateLimiterSettings | None = None, *,
                 cluster: RateLimiterCluster | None = None) -> None:
        """From ``settings`` (default: the environment), or acting through a given ``cluster``."""
        self.cluster = cluster if cluster is not None else RateLimiterCluster(settings)
        self._faults: list[Fault] = [cls(self.cluster) for cls in FAULT_TYPES]

    def faults(self) -> list[Fault]:
        return list(self._faults)

    def targets(self) -> list[str]:
        return self.cluster.targets()

    async def close(self) -> None:
        await super().close()  # e.g. a running hot_key_burst
        await self.cluster.close()

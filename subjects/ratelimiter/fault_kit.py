"""The rate limiter's fault kit (the chaos service's role): the seven faults and the lab's targets."""

from __future__ import annotations

from subjects.contract.fault_kit import Fault, FaultKit
from subjects.ratelimiter.cluster import ClusterRole, RateLimiterCluster
from subjects.ratelimiter.faults import FAULT_TYPES
from subjects.ratelimiter.settings import RateLimiterSettings


class RateLimiterFaultKit(ClusterRole, FaultKit):
    """Faults acting on one :class:`RateLimiterCluster`; targets are its nodes, policy keys and ``redis``."""

    def __init__(self, settings: RateLimiterSettings | None = None, *,
                 cluster: RateLimiterCluster | None = None) -> None:
        super().__init__(settings, cluster=cluster)
        self._faults: list[Fault] = [cls(self.cluster) for cls in FAULT_TYPES]

    def faults(self) -> list[Fault]:
        return list(self._faults)

    def targets(self) -> list[str]:
        return self.cluster.targets()

    async def close(self) -> None:
        for fault in self._faults:
            await fault.close()  # e.g. a running hot_key_burst
        await self.cluster.close()

"""TiKV's fault kit (the chaos service's role): the faults and the cluster's targets."""

from __future__ import annotations

from subjects.contract.fault_kit import Fault, FaultKit
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.faults import FAULT_TYPES, KV_TARGET
from subjects.tikv.settings import TiKVSettings


class TiKVFaultKit(FaultKit):
    """Faults on one :class:`TiKVCluster`; targets are its stores and PD members (discovered from PD by
    :meth:`refresh`, or configured) and ``kv``."""

    def __init__(self, settings: TiKVSettings | None = None, *, cluster: TiKVCluster | None = None) -> None:
        self.cluster = cluster if cluster is not None else TiKVCluster(settings)
        self._faults: list[Fault] = [cls(self.cluster) for cls in FAULT_TYPES]

    def faults(self) -> list[Fault]:
        return list(self._faults)

    def targets(self) -> list[str]:
        return [*self.cluster.targets(), KV_TARGET]

    async def refresh(self) -> None:
        await self.cluster.refresh_targets()

    async def close(self) -> None:
        for fault in self._faults:
            await fault.close()
        await self.cluster.close()

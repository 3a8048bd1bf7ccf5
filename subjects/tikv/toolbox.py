"""TiKV's toolbox (the agent's role): typed tools, playbooks, a snapshot summary, secrets.

The summary a model gets: the neutral core (stores and PD members not up), plus the
region health counts and, per store that is not up, PD's state and the status port's
answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from events import ObsSnapshot
from subjects.contract import ListedToolbox
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.details import snapshot_details
from subjects.tikv.playbooks import playbooks
from subjects.tikv.settings import TiKVSettings
from subjects.tikv.tools import TOOL_TYPES

DESCRIPTION = (
    "A TiKV cluster: a distributed transactional key-value store. Several TiKV stores hold the data in regions "
    "(key ranges), each region replicated on three stores with Raft (one leader serves it); the Placement Driver "
    "(PD, one or three members, one leader) keeps the cluster's metadata, tracks store heartbeats (a store that "
    "misses them reads Disconnected, later Down) and schedules replicas. The stores and PD members run as "
    "processes (containers) you can inspect and restart. Healthy means: every store Up and answering, every region "
    "fully replicated, PD led by a healthy member, and clients' reads and writes succeeding."
)


class TiKVToolbox(ListedToolbox):
    description = DESCRIPTION

    def __init__(self, settings: TiKVSettings | None = None, *, cluster: TiKVCluster | None = None) -> None:
        self.cluster = cluster if cluster is not None else TiKVCluster(settings)
        super().__init__([tool(self.cluster) for tool in TOOL_TYPES], playbooks())

    def summarize_details(self, snapshot: ObsSnapshot) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        details = snapshot_details(snapshot)
        if details.regions is not None:
            r = details.regions
            doc["regions"] = {"total": r.total, "miss_peer": r.miss_peer, "down_peer": r.down_peer,
                              "pending_peer": r.pending_peer, "leaderless": r.leaderless}
        troubled = {name: {"pd_state": f.pd_state, "status_port": "ok" if f.probe_ok else f.probe_error}
                    for name, f in details.stores.items() if not (f.pd_state == "Up" and f.probe_ok)}
        if troubled:
            doc["stores_not_up"] = troubled
        return doc

    def secrets(self) -> list[str]:
        """The password in the supervisor's URL, if the stores run under one."""
        password = urlparse(self.cluster.settings.supervisor_url).password
        return [password] if password else []

    async def close(self) -> None:
        await self.cluster.close()

"""TiKV's own part of ``obs.snapshot`` and ``workload.stats`` (their ``details``).

A snapshot's details hold, per store (by node name), what PD says of it (its state
name, leader and region counts, capacity, last heartbeat) and what the status probe
found; the region health counts from PD's checks; PD's members with health and
leadership. Workload details hold the prober's correctness counts: writes
acknowledged, read back, lost (an acknowledged write that reads back missing or
different), and undetermined (a put whose outcome the client could not know).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from subjects.contract import DetailsReader


class StoreFacts(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    address: str = ""
    status_address: str = ""
    pd_state: str = ""
    """PD's ``state_name``: Up, Disconnected, Down, Offline, Tombstone."""
    probe_ok: bool | None = None
    probe_error: str | None = None
    leader_count: int = 0
    region_count: int = 0
    capacity_bytes: int | None = None
    available_bytes: int | None = None
    last_heartbeat: datetime | None = None
    uptime: str | None = None
    version: str = ""


class RegionHealth(BaseModel):
    model_config = ConfigDict(frozen=True)
    total: int | None = None
    miss_peer: int = 0
    down_peer: int = 0
    pending_peer: int = 0
    leaderless: int = 0

    @property
    def under_replicated(self) -> int:
        return self.miss_peer + self.down_peer


class PDMember(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    member_id: int = 0
    healthy: bool | None = None
    leader: bool = False
    client_urls: list[str] = []


class SnapshotDetails(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    stores: dict[str, StoreFacts] = {}
    tombstones: list[int] = []
    regions: RegionHealth | None = None
    regions_error: str | None = None
    pd: list[PDMember] = []
    pd_error: str | None = None

    @property
    def pd_leader(self) -> str | None:
        return next((m.name for m in self.pd if m.leader), None)


class WorkloadDetails(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    acked_total: int = 0
    verified_total: int = 0
    lost_total: int = 0
    lost_keys: list[str] = []
    undetermined_total: int = 0


snapshot_details = DetailsReader(SnapshotDetails)
"""``snapshot_details(snap)``: the TiKV details of an ``obs.snapshot``."""
workload_details = DetailsReader(WorkloadDetails)
"""``workload_details(stats)``: the TiKV details of a ``workload.stats``."""

"""The rate limiter's own part of ``obs.snapshot`` and ``workload.stats`` (their ``details``).

The events carry ``details`` as a JSON object; these models are its schema,
validated when the rate limiter reads it (:data:`snapshot_details`,
:data:`workload_details`; details that do not validate read as empty). A
snapshot's details hold each policy key's sliding window against its limit
(``counters``), each node's process facts (``nodes``) and what the observer
learnt of the shared Redis (``backend``). The same shape
is what :meth:`events.ObsSnapshot.upcast_v1_v2` makes of a run recorded before
subjects were plug-ins, so old runs are judged and shown like new ones.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from subjects.contract import DetailsReader


class CounterView(BaseModel):
    """One policy key's window: ``count`` entries (``future_entries`` of them dated ahead of Redis
    now) against ``limit`` in force; ``declared_limit`` is what the lab's policy sets."""

    model_config = ConfigDict(frozen=True)
    key: str
    count: int
    limit: int
    window_s: float
    future_entries: int = 0
    declared_limit: int | None = None


class NodeProcess(BaseModel):
    """Why a node reads as it does: its ``/health`` probe and heartbeat age (by Redis time)."""

    model_config = ConfigDict(frozen=True)
    pid: int | None = None
    health_ok: bool | None = None
    heartbeat_age_s: float | None = None


class StoreHealth(BaseModel):
    """The shared Redis. ``ok``: it answers reads *and* accepts writes; ``writable`` /
    ``write_error`` report the write probe (``None``: not probed); ``info`` holds INFO fields,
    ``reads`` (``ok``/``failed``) and ``write_probe`` (``ok``/``timeout``/``oom``/…)."""

    model_config = ConfigDict(frozen=True)
    name: str = "redis"
    ok: bool
    latency_ms: float | None = None
    error: str | None = None
    info: dict[str, Any] = {}
    writable: bool | None = None
    write_error: str | None = None


class SnapshotDetails(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    counters: list[CounterView] = []
    nodes: dict[str, NodeProcess] = {}
    backend: StoreHealth | None = None

    def counter(self, key: str) -> CounterView | None:
        return next((c for c in self.counters if c.key == key), None)


class WorkloadDetails(BaseModel):
    """``limits``: the limit each key's checks reported (what clients were held to)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    limits: dict[str, int] = {}


snapshot_details = DetailsReader(SnapshotDetails)
"""``snapshot_details(snap)``: the rate limiter details of an ``obs.snapshot``."""
workload_details = DetailsReader(WorkloadDetails)
"""``workload_details(stats)``: the rate limiter details of a ``workload.stats``."""

"""The cluster view: what the subject looks like right now, folded from the log.

:class:`ClusterView` is a pure, in-memory fold (``apply(event)``, no I/O) of

- the latest ``obs.snapshot``, and the latest good one: a failed observation
  (``ok=False``) never reads as healthy: the view keeps the last good picture
  (``good_snapshot``) but reports itself ``blind`` with the error until a good
  snapshot arrives;
- the latest ``workload.stats``: what the clients experienced in the last interval;
- ``svc.*``: which services are alive (started or heart-beating, not stopping).

It does not interpret snapshots or stats: the subject's console rows
(``subjects.contract.console_rows``) draw the cluster and workload panels from
``good_snapshot``, ``workload`` and ``blind_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import (
    Event,
    ObsSnapshot,
    ServiceHeartbeat,
    ServiceStarted,
    ServiceStopping,
    WorkloadStats,
)

DEFAULT_SERVICE_STALE_S = 15.0


@dataclass(slots=True)
class ServiceRow:
    """One service instance as seen from ``svc.*`` events."""

    service: str
    instance: str
    version: str = ""
    pid: int | None = None
    started_at: datetime | None = None
    last_seen: datetime | None = None
    stopping: bool = False
    reason: str = ""

    def alive(self, now: datetime, stale_after_s: float = DEFAULT_SERVICE_STALE_S) -> bool:
        """Not stopping, and heard from within ``stale_after_s`` of ``now``."""
        if self.stopping or self.last_seen is None:
            return False
        return (now - self.last_seen).total_seconds() <= stale_after_s


class ClusterView:
    """Pure fold of snapshots, workload stats and service lifecycle. Never raises on an Event."""

    def __init__(self) -> None:
        self.snapshot: ObsSnapshot | None = None
        self.snapshot_at: datetime | None = None
        self.good_snapshot: ObsSnapshot | None = None
        self.workload: WorkloadStats | None = None
        self.workload_at: datetime | None = None
        self.services: dict[tuple[str, str], ServiceRow] = {}
        self.snapshots: int = 0
        self._handlers: dict[str, Callable[[Any, datetime], None]] = {
            ObsSnapshot.TYPE: self._snapshot,
            WorkloadStats.TYPE: self._workload,
            ServiceStarted.TYPE: self._svc_started,
            ServiceHeartbeat.TYPE: self._svc_heartbeat,
            ServiceStopping.TYPE: self._svc_stopping,
        }

    def apply(self, event: Event) -> bool:
        """Fold one event; True if it changed the view."""
        handler = self._handlers.get(event.type)
        if handler is None:
            return False
        handler(event.data, event.time)
        return True

    # -- folding ------------------------------------------------------------

    def _snapshot(self, p: ObsSnapshot, at: datetime) -> None:
        self.snapshot = p
        self.snapshot_at = at
        self.snapshots += 1
        if p.ok:
            self.good_snapshot = p

    def _workload(self, p: WorkloadStats, at: datetime) -> None:
        self.workload = p
        self.workload_at = at

    def _svc(self, service: str, instance: str) -> ServiceRow:
        row = self.services.get((service, instance))
        if row is None:
            row = self.services[(service, instance)] = ServiceRow(service, instance)
        return row

    def _svc_started(self, p: ServiceStarted, at: datetime) -> None:
        row = self._svc(p.service, p.instance)
        row.version, row.pid, row.started_at, row.last_seen = p.version, p.pid, at, at
        row.stopping, row.reason = False, ""

    def _svc_heartbeat(self, p: ServiceHeartbeat, at: datetime) -> None:
        row = self._svc(p.service, p.instance)
        row.version, row.pid, row.last_seen = p.version, p.pid, at
        row.stopping = False

    def _svc_stopping(self, p: ServiceStopping, at: datetime) -> None:
        row = self._svc(p.service, p.instance)
        row.stopping, row.reason, row.last_seen = True, p.reason, at

    # -- reading ------------------------------------------------------------

    @property
    def blind(self) -> bool:
        """The latest observation failed: what is shown is stale, not healthy."""
        return self.snapshot is not None and not self.snapshot.ok

    @property
    def blind_error(self) -> str | None:
        return (self.snapshot.error or "observation failed") if self.blind and self.snapshot else None

    def services_alive(self, now: datetime, stale_after_s: float = DEFAULT_SERVICE_STALE_S) -> list[str]:
        """Names of services with at least one live instance, sorted."""
        return sorted({r.service for r in self.services.values() if r.alive(now, stale_after_s)})

    def service_rows(self) -> list[ServiceRow]:
        return sorted(self.services.values(), key=lambda r: (r.service, r.instance))

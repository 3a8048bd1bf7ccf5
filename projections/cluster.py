"""The cluster view: what the subject looks like right now, folded from the log.

:class:`ClusterView` is a pure, in-memory fold (``apply(event)``, no I/O) of

- the latest ``obs.snapshot``, and the latest good one: a failed observation
  (``ok=False``) never reads as healthy: the view keeps the last good picture
  (``good_snapshot``) but reports itself ``blind`` with the error until a good
  snapshot arrives;
- the latest ``workload.stats``: what the clients experienced in the last interval;
- ``svc.*``: which service instances are alive: started or heart-beating, not stopping, and heard
  from within :data:`MISSED_HEARTBEATS` of the instance's own heartbeat interval (recorded in its
  events); an instance that missed that many is gone (SIGKILL leaves no ``svc.stopping``). An
  instance that fell silent before a newer instance of its service started, and has missed a beat
  since (:data:`REPLACED_AFTER_BEATS`), was replaced: gone too, without waiting the full window.
  "Now" is always the caller's (the wall clock live, the log's time in replay).

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
from events.catalogue.svc import HEARTBEAT_S

MISSED_HEARTBEATS = 3
"""Heartbeats an instance may miss before it is gone (one late beat is load, three are a death)."""
REPLACED_AFTER_BEATS = 1.5
"""Silence, in heartbeat intervals, after which an instance with a newer sibling counts as replaced:
a beat missed, with slack for a late one (agents started together are siblings, not successors)."""


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
    heartbeat_s: float = HEARTBEAT_S
    """The instance's heartbeat interval, as its own events state it."""

    def silent_s(self, now: datetime) -> float | None:
        """Seconds since the instance was last heard from (None: never)."""
        return None if self.last_seen is None else (now - self.last_seen).total_seconds()

    def alive(self, now: datetime, stale_after_s: float | None = None) -> bool:
        """Not stopping, and heard from within ``stale_after_s`` of ``now`` (default: its last
        :data:`MISSED_HEARTBEATS` heartbeat intervals)."""
        silent = self.silent_s(now)
        if self.stopping or silent is None:
            return False
        return silent <= (MISSED_HEARTBEATS * self.heartbeat_s if stale_after_s is None else stale_after_s)


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
        row.stopping, row.reason, row.heartbeat_s = False, "", p.heartbeat_s

    def _svc_heartbeat(self, p: ServiceHeartbeat, at: datetime) -> None:
        row = self._svc(p.service, p.instance)
        row.version, row.pid, row.last_seen, row.heartbeat_s = p.version, p.pid, at, p.heartbeat_s
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

    def services_alive(self, now: datetime, stale_after_s: float | None = None) -> list[str]:
        """Names of services with at least one live instance, sorted."""
        return sorted({r.service for r in self.services.values() if r.alive(now, stale_after_s)})

    def replaced(self, row: ServiceRow, now: datetime) -> bool:
        """A newer instance of ``row``'s service started after ``row`` was last heard from, and
        ``row`` has missed a beat since (:data:`REPLACED_AFTER_BEATS`): its successor took over."""
        silent = row.silent_s(now)
        if row.last_seen is None or silent is None or silent <= REPLACED_AFTER_BEATS * row.heartbeat_s:
            return False
        last_seen = row.last_seen
        return any(other.service == row.service and other is not row and other.started_at is not None
                   and other.started_at > last_seen for other in self.services.values())

    def status(self, row: ServiceRow, now: datetime) -> str:
        """``alive``, ``stopped`` (it said so: ``svc.stopping``) or ``gone`` (silent for
        :data:`MISSED_HEARTBEATS` beats, or replaced by a newer instance), as of ``now``."""
        if row.stopping:
            return "stopped"
        return "alive" if row.alive(now) and not self.replaced(row, now) else "gone"

    def service_rows(self) -> list[ServiceRow]:
        return sorted(self.services.values(), key=lambda r: (r.service, r.instance))

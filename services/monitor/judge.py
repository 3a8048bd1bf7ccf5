"""Invariant bookkeeping, free of I/O.

The :class:`Judge` keeps the recent snapshot and workload history (bounded by
time), evaluates the subject's invariants on it, and reports *transitions*:
which (invariant, entity) pairs started or stopped being violated. History is
rebuilt from the log on restart, so grace periods survive a monitor restart.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from events import ObsSnapshot, WorkloadStats
from subjects.contract import Invariant, Violation
from subjects.judging import ObserverBlind

Key = tuple[str, str]


@dataclass
class Active:
    violation: Violation
    first_seen: datetime


@dataclass
class Transitions:
    started: list[Active] = field(default_factory=list)
    cleared: list[tuple[Active, datetime]] = field(default_factory=list)


class Judge:
    """Judges a subject's invariants, plus ``observer_blind`` whether the subject listed it or not:
    a monitor that cannot see is never silent about it."""

    def __init__(self, invariants: list[Invariant], history_s: float = 30.0) -> None:
        missing_blind = all(i.name != ObserverBlind.name for i in invariants)
        self.invariants = [*invariants, ObserverBlind()] if missing_blind else list(invariants)
        self.history_s = history_s
        self.snapshots: deque[ObsSnapshot] = deque()
        self.workload: deque[tuple[datetime, WorkloadStats]] = deque()
        self.active: dict[Key, Active] = {}

    def add_workload(self, at: datetime, stats: WorkloadStats) -> None:
        self.workload.append((at, stats))
        self._trim(at)

    def add_snapshot(self, snapshot: ObsSnapshot) -> None:
        self.snapshots.append(snapshot)
        self._trim(snapshot.observed_at)

    def forget_history(self) -> None:
        """Drop the snapshot and workload history (judging begins afresh)."""
        self.snapshots.clear()
        self.workload.clear()

    def restore_active(self, key: Key, violation: Violation, first_seen: datetime) -> None:
        self.active[key] = Active(violation, first_seen)

    def restore_cleared(self, key: Key) -> None:
        self.active.pop(key, None)

    def evaluate(self, now: datetime) -> Transitions:
        """Judge the current history; update the active set; return what changed."""
        snapshots = list(self.snapshots)
        workload = [w for _, w in self.workload]
        current: dict[Key, Violation] = {}
        for invariant in self.invariants:
            for violation in invariant.evaluate(snapshots, workload):
                current[(violation.invariant, violation.entity)] = violation
        out = Transitions()
        for key, violation in current.items():
            if key not in self.active:
                self.active[key] = Active(violation, now)
                out.started.append(self.active[key])
            else:
                self.active[key].violation = violation
        for key in [k for k in self.active if k not in current]:
            out.cleared.append((self.active.pop(key), now))
        return out

    def _trim(self, now: datetime) -> None:
        horizon = now - timedelta(seconds=self.history_s)
        while self.snapshots and self.snapshots[0].observed_at < horizon:
            self.snapshots.popleft()
        while self.workload and self.workload[0][0] < horizon:
            self.workload.popleft()


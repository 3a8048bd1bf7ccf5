"""The rate limiter's invariants: pure, total functions of snapshot history.

Grace periods are judged from the snapshots' ``observed_at`` timestamps, never
from process memory, so a restarted monitor that reloads its history from the
log decides exactly as before. The monitor observes every ~0.5 s and the
detection target is 1.5 s after a fault, so a violation needs the condition in
at least two consecutive (usable) snapshots spanning at least the grace period:
with a 0.5 s cadence two snapshots suffice, while a faster observer needs more
of them to cover the same time, so one unlucky snapshot never opens a ticket.

Snapshots with ``ok=False`` are blind: they neither confirm nor refute a
condition about nodes or counters, so ``node_down``/``over_limit`` skip them
(a condition seen before and after a blind spell has persisted through it, and
blindness never reads as recovery). Blindness itself is ``observer_blind``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from events import CounterView, NodeView, ObsSnapshot, WorkloadStats
from subjects.base import Invariant, Violation

T = TypeVar("T")

MIN_SNAPSHOTS = 2


def _ordered(history: Sequence[ObsSnapshot]) -> list[ObsSnapshot]:
    return sorted(history, key=lambda s: s.observed_at)


def _persisting(
    usable: list[ObsSnapshot], pick: Callable[[ObsSnapshot], T | None]
) -> list[tuple[ObsSnapshot, T]]:
    """The trailing run of ``usable`` snapshots in which ``pick`` finds the condition (newest last)."""
    run: list[tuple[ObsSnapshot, T]] = []
    for snap in reversed(usable):
        found = pick(snap)
        if found is None:
            break
        run.append((snap, found))
    run.reverse()
    return run


def _held(run: Sequence[tuple[ObsSnapshot, Any]], grace_s: float) -> float | None:
    """Seconds the condition has held if that satisfies the grace rule, else None."""
    if len(run) < MIN_SNAPSHOTS:
        return None
    held = (run[-1][0].observed_at - run[0][0].observed_at).total_seconds()
    return held if held >= grace_s else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class NodeDown(Invariant):
    """Every lab node is up (fresh heartbeat and a healthy ``/health``).

    Fires for a node that reads ``down`` in every usable snapshot of a trailing
    run of at least 2 snapshots spanning at least ``grace_s`` = 0.4 s. Why 0.4 s:
    below the 0.5 s monitor cadence, so two consecutive snapshots are enough
    (detection ≤ ~1 s after a kill), yet a single bad probe never fires it.
    A restarting node is down for ~0.5 s, so routine restarts can still be seen;
    that is the honest reading. Entity: the node id.
    """

    name = "node_down"
    description = "every rate limiter node is up: heartbeat fresh and /health answering"
    grace_s = 0.4

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        usable = [s for s in _ordered(history) if s.ok]
        if not usable:
            return []
        out = []
        for node in usable[-1].nodes:
            def down(snap: ObsSnapshot, node_id: str = node.node) -> NodeView | None:
                view = next((n for n in snap.nodes if n.node == node_id), None)
                return view if view is not None and view.status == "down" else None

            run = _persisting(usable, down)
            held = _held(run, self.grace_s)
            if held is None:
                continue
            view = run[-1][1]
            evidence: dict[str, Any] = {
                "node": view.node,
                "url": view.url,
                "status": view.status,
                "detail": view.detail,
                "last_seen": _iso(view.last_seen),
                "pid": view.pid,
                "since": _iso(run[0][0].observed_at),
                "down_for_s": round(held, 3),
                "snapshots": len(run),
            }
            errors = _latest_node_errors(workload, view.node)
            if errors is not None:
                evidence["client_errors_last_interval"] = errors
            out.append(Violation(self.name, view.node,
                                 f"node {view.node} is down ({view.detail or 'no detail'})", evidence))
        return out


def _latest_node_errors(workload: Sequence[WorkloadStats], node: str) -> int | None:
    for stats in reversed(workload):
        for n in stats.nodes:
            if n.node == node:
                return n.errors
    return None


class OverLimit(Invariant):
    """No key's window holds more than its limit (beyond a tolerance).

    The limiter admits a request only while ``count + cost <= limit``, so a
    correct window never exceeds its limit. Fires for a key whose count exceeds
    ``limit * (1 + tolerance)`` (tolerance 0.1, room for a limit lowered at run
    time and observation skew) in every usable snapshot of a trailing run of at
    least 2 snapshots spanning at least ``grace_s`` = 0.4 s (same reasoning as
    ``node_down``). Entity: the policy key. The evidence carries the count of
    future-dated entries, the signature of a corrupted log.
    """

    name = "over_limit"
    description = "every key's sliding window holds no more requests than its limit (10% tolerance)"
    grace_s = 0.4
    tolerance = 0.1

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        usable = [s for s in _ordered(history) if s.ok]
        if not usable:
            return []
        out = []
        for counter in usable[-1].counters:
            def over(snap: ObsSnapshot, key: str = counter.key) -> CounterView | None:
                view = next((c for c in snap.counters if c.key == key), None)
                if view is None or view.count <= view.limit * (1 + self.tolerance):
                    return None
                return view

            run = _persisting(usable, over)
            held = _held(run, self.grace_s)
            if held is None:
                continue
            view = run[-1][1]
            evidence = {
                "key": view.key,
                "count": view.count,
                "limit": view.limit,
                "future_entries": view.future_entries,
                "window_s": view.window_s,
                "tolerance": self.tolerance,
                "since": _iso(run[0][0].observed_at),
                "over_for_s": round(held, 3),
                "snapshots": len(run),
            }
            extra = f", {view.future_entries} dated in the future" if view.future_entries else ""
            summary = f"key {view.key} holds {view.count} requests against a limit of {view.limit}{extra}"
            out.append(Violation(self.name, view.key, summary, evidence))
        return out


class ObserverBlind(Invariant):
    """The observer can see the subject.

    Fires (entity ``observer``) when the trailing run of failed observations
    (``ok=False``) is at least 2 snapshots long: a single failure may be a
    blip, two in a row at the 0.5 s cadence is ~1 s of blindness, within the
    detection target. No extra time grace: failing observations are already
    slow (each may wait for a timeout). A blind observer is never "healthy".
    """

    name = "observer_blind"
    description = "the monitor can observe the subject (a failed observation is never read as healthy)"
    grace_s = 0.0

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        run = _persisting(_ordered(history), lambda s: s if not s.ok else None)
        if len(run) < MIN_SNAPSHOTS:
            return []
        first, last = run[0][0], run[-1][0]
        evidence = {
            "error": last.error,
            "since": _iso(first.observed_at),
            "failures": len(run),
            "blind_for_s": round((last.observed_at - first.observed_at).total_seconds(), 3),
        }
        return [Violation(self.name, "observer", f"observation failing: {last.error}", evidence)]


def invariants() -> list[Invariant]:
    return [NodeDown(), OverLimit(), ObserverBlind()]

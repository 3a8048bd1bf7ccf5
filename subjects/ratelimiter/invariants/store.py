"""The invariants on Redis as the limiter's store, and on what clients see of it.

``redis_unavailable`` is judged from snapshots (the observer's own reads and
write probe); ``error_rate`` and ``high_latency`` judge what the load
generator's clients experienced, per interval. One cause, one ticket: an
interval that overlaps a Redis outage belongs to ``redis_unavailable``, so its
failing and slow checks are not also ``error_rate``/``high_latency``
(:func:`explained_by_store`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from events import NodeStats, ObsSnapshot, WorkloadStats
from subjects.contract import Violation
from subjects.judging import (
    ErrorRateInvariant,
    SnapshotCondition,
    WorkloadInvariant,
    interval_start,
    intervals_held,
    persisted_for,
    persisted_for_intervals,
    persisting,
)
from subjects.ratelimiter.invariants.snapshots import backend_of, newest_backend, store_unavailable


class RedisUnavailable(SnapshotCondition[str]):
    """Redis serves the limiter: it answers reads and accepts a write in time.

    Fires (entity ``redis``) when, in every snapshot of a trailing run of at
    least 2 spanning at least ``grace_s`` = 0.2 s, Redis either failed the
    observer's reads (PING and friends: refused or timed out after the client's
    0.5 s timeout) or left its write probe unanswered for ``write_probe_timeout_s``
    (0.25 s; a healthy loopback write takes well under 1 ms, so 250x that is a
    pause or a hang, not noise), or said in its INFO that it holds writes
    (``CLIENT PAUSE``; the observer then reads the probe as ``paused`` at
    once). Every check is a write (the window script), so either way no node
    can decide. A refused write (OOM) is an answer and shows
    as ``error_rate`` instead. An observation that failed without reaching Redis
    (no backend reading) breaks the run: that is ``observer_blind``.
    """

    name = "redis_unavailable"
    description = "Redis answers reads and accepts writes in time (not hung, paused or down)"
    grace_s = 0.2

    judges_blind = True  # a failed observation that reached Redis still carries its reading

    def condition(self, snap: ObsSnapshot) -> str | None:
        return store_unavailable(snap)

    def violation(self, run: list[tuple[ObsSnapshot, str]], seconds: float) -> Violation:
        backend = backend_of(run[-1][0])
        info = backend.info if backend is not None else {}
        evidence = {
            "reason": run[-1][1],
            "address": info.get("address"),
            "reads": info.get("reads"),
            "write_probe": info.get("write_probe"),
            "ping_ms": backend.latency_ms if backend is not None else None,
            "paused_actions": info.get("paused_actions"),
            **persisted_for(run, seconds, "unavailable"),
        }
        return Violation(self.name, "redis", f"Redis does not serve the limiter: {run[-1][1]}", evidence)


# -- workload invariants ------------------------------------------------------------------


def explained_by_store(history: Sequence[ObsSnapshot]) -> Callable[[WorkloadStats], bool]:
    """Whether an interval overlapped a time Redis was unavailable (its failures are redis_unavailable's)."""
    times = [s.observed_at for s in history if store_unavailable(s) is not None]
    newest = max(history, key=lambda s: s.observed_at) if history else None
    newest_down = newest is not None and store_unavailable(newest) is not None
    slack = timedelta(seconds=0.5)  # an outage may start between two snapshots (0.25 s apart), and a slow one

    def explained(stats: WorkloadStats) -> bool:
        start = interval_start(stats)
        if start is None or stats.ended_at is None:
            return newest_down
        return any(start - slack <= t <= stats.ended_at + slack for t in times)

    return explained


class ErrorRate(ErrorRateInvariant):
    """Clients' checks succeed: a check fails only when every node failed it.

    The load generator fails a request over to the next node, so a key's
    request is an error only when no node could decide it; one dead node
    causes none. Fires (entity ``checks``) when, in each interval of a trailing
    run of at least 2 covering at least ``grace_s`` = 0.5 s of traffic, at least
    ``threshold`` = 10% of the requests sent failed (and at least one did), and
    over that run at least ``min_sent`` = 20 requests were sent and at least
    ``min_errors`` = 5 failed. Why 10%: a healthy cluster fails none (so any
    sustained failure is real), yet a handful of failures around a node restart
    (a few requests out of ~200/s) stays far below it. Why 0.5 s and counts: at
    0.25 s intervals that is two of them (~100 requests), so a failing store is
    seen ~0.5 s after it starts failing, while one error, or a burst of them
    inside one interval, never fires it. Inhibited for intervals that overlap a
    Redis outage (``redis_unavailable`` owns those). The evidence names the
    failing nodes and keys and Redis's last write-probe result.
    """

    name = "error_rate"
    description = "clients' rate checks succeed (under 10% failing)"
    grace_s = 0.5
    threshold = 0.10
    min_sent = 20
    min_errors = 5
    entity = "checks"
    counted = "rate checks"
    summary_ratio = True
    operations_key = "keys"
    nodes_key = "node_errors"

    def excused(self, history: Sequence[ObsSnapshot]) -> Callable[[WorkloadStats], bool]:
        return explained_by_store(history)

    def extra_evidence(self, history: Sequence[ObsSnapshot]) -> dict[str, Any]:
        """Redis's last write-probe result, from the newest snapshot that read it."""
        backend = newest_backend(history)
        if backend is None:
            return {}
        return {"redis_write_probe": backend.info.get("write_probe"), "redis_write_error": backend.write_error}


class HighLatency(WorkloadInvariant):
    """Checks are fast: every node's p99 check latency (as clients see it) stays under 200 ms.

    Fires (entity ``checks``) for the nodes whose p99 was above ``threshold_ms``
    = 200 ms in each interval of a trailing run of at least 2 covering at least
    ``grace_s`` = 1.0 s, having decided at least ``min_checks`` = 20 checks over
    that run (so a p99 means something). Why 200 ms: the node's target is p99
    ≤ 10 ms on loopback; 20x that is well above the scheduling jitter of a busy
    2-core machine running the whole lab, and below the nodes' 0.5 s Redis
    timeout, so it reports a slow store before checks turn into errors. Why a
    whole second of slow intervals: at 0.25 s a node decides ~15 checks per
    interval, so one slow request is an interval's p99; it must recur in four
    intervals in a row to count. An interval in which the node decided nothing
    breaks the run. Failed checks are not timed (``error_rate`` counts them).
    Inhibited for intervals that overlap a Redis outage (``redis_unavailable``
    owns those).
    """

    name = "high_latency"
    description = "rate checks are fast (every node's p99 under 200 ms)"
    grace_s = 1.0
    threshold_ms = 200.0
    min_checks = 20

    def judge(self, stats: list[WorkloadStats], history: Sequence[ObsSnapshot]) -> list[Violation]:
        explained = explained_by_store(history)
        nodes = sorted({n.node for s in stats[-1:] for n in s.nodes})
        slow: dict[str, tuple[float, int, list[tuple[WorkloadStats, NodeStats]]]] = {}
        for node in nodes:
            def on(s: WorkloadStats, node: str = node) -> NodeStats | None:
                view = next((n for n in s.nodes if n.node == node), None)
                if explained(s) or view is None or view.answered == 0 or view.p99_ms is None:
                    return None
                return view if view.p99_ms > self.threshold_ms else None

            run = persisting(stats, on)
            seconds = intervals_held(run, self.grace_s)
            checks = sum(v.answered for _, v in run)
            if seconds is not None and checks >= self.min_checks:
                slow[node] = (seconds, checks, run)
        if not slow:
            return []
        longest_s, _, longest_run = max(slow.values(), key=lambda x: x[0])
        p99 = {node: run[-1][1].p99_ms or 0.0 for node, (_, _, run) in slow.items()}
        evidence = {
            "p99_ms": p99,
            "threshold_ms": self.threshold_ms,
            "checks": {node: checks for node, (_, checks, _) in slow.items()},
            **persisted_for_intervals(longest_run, longest_s, "slow"),
        }
        worst = max(p99, key=p99.__getitem__)
        summary = f"rate checks are slow: p99 {p99[worst]:.0f} ms on {worst} (threshold {self.threshold_ms:.0f} ms)"
        return [Violation(self.name, "checks", summary, evidence)]


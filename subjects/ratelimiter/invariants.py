"""The rate limiter's invariants: pure, total functions of snapshot and workload history.

Each is named for what is observed, never for a fault that may cause it. The
judging every subject shares (persistence over a grace period from snapshot
timestamps, stale workload stats, ``observer_blind``) is in
:mod:`subjects.judging`; this module holds only the rate limiter's own rules.

Snapshot invariants (``node_down``, ``over_limit``, ``future_dated_entries``,
``limit_policy_drift``, ``redis_unavailable``): the monitor observes every
0.25 s and the detection target for them is 0.5 s after a fault, so a
violation needs the condition in at least two consecutive (usable) snapshots
spanning at least the grace period (0.2 s: two consecutive snapshots, two
independent observations agreeing).

Workload invariants (``node_over_admitting``, ``error_rate``, ``high_latency``)
judge what the load generator's clients experienced. The load generator reports
every 0.25 s (:data:`~subjects.ratelimiter.settings.STATS_INTERVAL_S`) and the
monitor judges each interval as it arrives, so a verdict can change four times
a second; each rule then asks for enough requests, in counts as well as rates,
over the newest intervals (a sliding window) that one burst, one slow request
or one error never trips it. Each class's docstring gives its window and why.

One cause, one ticket: symptoms whose cause has its own invariant are
*inhibited* (as alert inhibition rules do). While Redis is unavailable
(``redis_unavailable``'s condition), failing and slow checks are not also
``error_rate``/``high_latency``, and a node whose only problem is a stale
heartbeat while Redis refused writes (heartbeats are writes) is not
``node_down``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from events import NodeStats, NodeView, ObsSnapshot, WorkloadStats
from subjects.contract import Invariant, Violation
from subjects.judging import (
    ObserverBlind,
    covers,
    held,
    interval_start,
    intervals_held,
    iso,
    ordered,
    persistent,
    persisting,
    recent_workload,
    since,
    trailing,
    usable,
)
from subjects.ratelimiter.details import CounterView, StoreHealth, snapshot_details, workload_details

T = TypeVar("T")


def _counter(snap: ObsSnapshot, key: str) -> CounterView | None:
    return snapshot_details(snap).counter(key)


def _keys(snapshots: Sequence[ObsSnapshot]) -> list[str]:
    """The keys of the newest snapshot: the ones judged."""
    return [c.key for c in snapshot_details(snapshots[-1]).counters] if snapshots else []


def _per_key(snapshots: Sequence[ObsSnapshot], condition: Callable[[ObsSnapshot, CounterView], T | None],
             grace_s: float) -> list[tuple[list[tuple[ObsSnapshot, T]], float]]:
    """(run, seconds held) for each key whose ``condition`` on its counter persisted past the grace."""
    def on_key(snap: ObsSnapshot, key: str) -> T | None:
        view = _counter(snap, key)
        return None if view is None else condition(snap, view)

    return [(run, seconds) for _, run, seconds in persistent(snapshots, _keys(snapshots), on_key, grace_s)]


# -- the backend's state, as observed ------------------------------------------------


def _backend(snap: ObsSnapshot) -> StoreHealth | None:
    return snapshot_details(snap).backend


def store_unavailable(snap: ObsSnapshot) -> str | None:
    """Why Redis does not serve the limiter in ``snap`` (reads failed, or a write timed out), else None.

    A refused write (out of memory, read-only) is an *answer*, not unavailability:
    it shows as failing checks (``error_rate``) instead.
    """
    backend = _backend(snap)
    if backend is None:
        return None
    if backend.info.get("reads") == "failed":
        return f"reads fail: {backend.error or snap.error or 'no answer'}"
    if backend.info.get("write_probe") in ("timeout", "paused"):
        return backend.write_error or "a write timed out"
    return None


def store_refusing_writes(snap: ObsSnapshot) -> bool:
    """Redis did not accept the observer's write (any reason) or could not be read at all."""
    backend = _backend(snap)
    return backend is not None and (backend.info.get("reads") == "failed" or backend.writable is False)


# -- snapshot invariants ----------------------------------------------------------------


class NodeDown(Invariant):
    """Every lab node is up (fresh heartbeat and a healthy ``/health``).

    Fires for a node that reads ``down`` in every usable snapshot of a trailing
    run of at least 2 snapshots spanning at least ``grace_s`` = 0.2 s. Why 0.2 s:
    below the 0.25 s monitor cadence, so two consecutive snapshots are enough
    (detection ~0.4 s after a kill), yet a single bad probe never fires it.
    A restarting node is down for ~0.5 s, so routine restarts can still be seen;
    that is the honest reading. Entity: the node id.

    Not judged in a snapshot (skipped, like a blind one: an earlier violation
    persists through it, none starts in it): a node under an announced planned
    restart (``restart_node`` announces it for at most its deadline, so an
    operator's own restart opens no ticket, while a node already down stays
    violated until it is seen up); and a node whose ``/health`` answers but whose
    heartbeat is stale if Redis refused writes at any point since that heartbeat
    (a heartbeat is a write; ``redis_unavailable`` covers it).
    """

    name = "node_down"
    description = "every rate limiter node is up: heartbeat fresh and /health answering"
    grace_s = 0.2

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        everything = ordered(history)
        good = usable(history)
        if not good:
            return []
        refusing = [s.observed_at for s in everything if store_refusing_writes(s)]
        out = []
        for node in good[-1].nodes:
            def down(snap: ObsSnapshot, node_id: str = node.node) -> NodeView | None:
                view = snap.node(node_id)
                return view if view is not None and view.status == "down" else None

            def excused(snap: ObsSnapshot, node_id: str = node.node) -> bool:
                view = down(snap)
                if view is None:
                    return False
                if view.maintenance:
                    return True
                facts = snapshot_details(snap).nodes.get(node_id)
                if facts is None or facts.health_ok is not True or view.last_seen is None:
                    return False
                slack_from = view.last_seen - timedelta(seconds=1.0)  # slack: Redis clock vs observer clock
                return any(slack_from <= t <= snap.observed_at for t in refusing)

            run = persisting([s for s in good if not excused(s)], down)
            seconds = held(run, self.grace_s)
            if seconds is None:
                continue
            last_snap, view = run[-1]
            facts = snapshot_details(last_snap).nodes.get(view.node)
            evidence: dict[str, Any] = {
                "node": view.node,
                "address": view.address,
                "status": view.status,
                "detail": view.detail,
                "last_seen": iso(view.last_seen),
                "pid": facts.pid if facts is not None else None,
                "since": iso(run[0][0].observed_at),
                "down_for_s": round(seconds, 3),
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
    """No key's window holds more requests than its limit (beyond a tolerance).

    The limiter admits a request only while ``count + cost <= limit``, so a
    correct window never exceeds its limit. Fires for a key whose present-dated
    entries (``count - future_entries``: future-dated ones are
    ``future_dated_entries``) exceed ``ceiling * (1 + tolerance)`` in every
    usable snapshot of a trailing run of at least 2 snapshots spanning at least
    ``grace_s`` = 0.2 s (same reasoning as ``node_down``). ``ceiling`` is the
    highest limit in force during the last window (a window filled under a
    higher limit legitimately holds it until its entries age out, one window
    later, when the limit is lowered); tolerance 0.1 covers observation skew.
    Entity: the policy key.
    """

    name = "over_limit"
    description = "every key's sliding window holds no more requests than its limit (10% tolerance)"
    grace_s = 0.2
    tolerance = 0.1

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        good = usable(history)

        def ceiling(snap: ObsSnapshot, view: CounterView) -> int:
            start = snap.observed_at - timedelta(seconds=view.window_s)
            limits = [c.limit for s in good if start <= s.observed_at <= snap.observed_at
                      if (c := _counter(s, view.key)) is not None]
            return max([view.limit, *limits])

        def over(snap: ObsSnapshot, view: CounterView) -> tuple[CounterView, int] | None:
            top = ceiling(snap, view)
            return None if view.count - view.future_entries <= top * (1 + self.tolerance) else (view, top)

        out = []
        for run, seconds in _per_key(good, over, self.grace_s):
            view, top = run[-1][1]
            evidence = {
                "key": view.key,
                "count": view.count,
                "limit": view.limit,
                "ceiling": top,
                "future_entries": view.future_entries,
                "window_s": view.window_s,
                "tolerance": self.tolerance,
                "since": iso(run[0][0].observed_at),
                "over_for_s": round(seconds, 3),
                "snapshots": len(run),
            }
            summary = f"key {view.key} holds {view.count} requests against a limit of {view.limit}"
            out.append(Violation(self.name, view.key, summary, evidence))
        return out


class FutureDatedEntries(Invariant):
    """No key's window holds entries dated in the future.

    The limiter scores entries with Redis time, so a future-dated entry comes
    from a writer with a clock far ahead (or a bug): it never ages out of the
    window and counts against the key until removed, blocking real traffic.
    Any such entry is wrong, so the threshold is 1, held in every usable
    snapshot of a trailing run of at least 2 snapshots spanning at least
    ``grace_s`` = 0.2 s (as ``node_down``). Entity: the policy key. The
    evidence says whether the key also reads over its limit because of them.
    """

    name = "future_dated_entries"
    description = "no key's sliding window holds entries dated in the future (no correct writer makes them)"
    grace_s = 0.2

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        def ahead(snap: ObsSnapshot, view: CounterView) -> CounterView | None:
            return view if view.future_entries > 0 else None

        out = []
        for run, seconds in _per_key(usable(history), ahead, self.grace_s):
            view = run[-1][1]
            evidence = {
                "key": view.key,
                "count": view.count,
                "limit": view.limit,
                "future_entries": view.future_entries,
                "over_limit": view.count > view.limit,
                "window_s": view.window_s,
                "since": iso(run[0][0].observed_at),
                "future_dated_for_s": round(seconds, 3),
                "snapshots": len(run),
            }
            summary = (f"key {view.key} holds {view.future_entries} entries dated in the future "
                       f"({view.count} counted against a limit of {view.limit})")
            out.append(Violation(self.name, view.key, summary, evidence))
        return out


class LimitPolicyDrift(Invariant):
    """Every key's limit in force equals the lab's declared policy.

    The declared policy is configuration; a live limit that differs from it
    (changed through the management API, by hand or by a bad deploy) lets
    abuse through or blocks legitimate clients. Any difference counts (limits
    are exact integers), held in every usable snapshot of a trailing run of at
    least 2 snapshots spanning at least ``grace_s`` = 0.2 s (as ``node_down``:
    one odd read never fires it). Keys without a declared limit are not judged.
    Entity: the policy key.
    """

    name = "limit_policy_drift"
    description = "every key's limit in force equals the declared policy"
    grace_s = 0.2

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        def differs(snap: ObsSnapshot, view: CounterView) -> CounterView | None:
            return None if view.declared_limit is None or view.limit == view.declared_limit else view

        out = []
        for run, seconds in _per_key(usable(history), differs, self.grace_s):
            view = run[-1][1]
            evidence = {
                "key": view.key,
                "limit": view.limit,
                "declared_limit": view.declared_limit,
                "window_s": view.window_s,
                "since": iso(run[0][0].observed_at),
                "drifted_for_s": round(seconds, 3),
                "snapshots": len(run),
            }
            summary = f"key {view.key} is limited to {view.limit} but the policy declares {view.declared_limit}"
            out.append(Violation(self.name, view.key, summary, evidence))
        return out


class RedisUnavailable(Invariant):
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

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        run = persisting(ordered(history), store_unavailable)
        seconds = held(run, self.grace_s)
        if seconds is None:
            return []
        backend = _backend(run[-1][0])
        info = backend.info if backend is not None else {}
        evidence = {
            "reason": run[-1][1],
            "address": info.get("address"),
            "reads": info.get("reads"),
            "write_probe": info.get("write_probe"),
            "ping_ms": backend.latency_ms if backend is not None else None,
            "paused_actions": info.get("paused_actions"),
            "since": iso(run[0][0].observed_at),
            "unavailable_for_s": round(seconds, 3),
            "snapshots": len(run),
        }
        return [Violation(self.name, "redis", f"Redis does not serve the limiter: {run[-1][1]}", evidence)]


# -- workload invariants ------------------------------------------------------------------


def _explained_by_store(history: Sequence[ObsSnapshot]) -> Callable[[WorkloadStats], bool]:
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


class ErrorRate(Invariant):
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

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        stats = recent_workload(history, workload)
        explained = _explained_by_store(history)

        def failing(s: WorkloadStats) -> tuple[int, int] | None:
            sent = sum(o.sent for o in s.operations)
            errors = sum(o.errors for o in s.operations)
            if explained(s) or errors == 0 or errors < self.threshold * sent:
                return None
            return sent, errors

        run = persisting(stats, failing)
        seconds = intervals_held(run, self.grace_s)
        if seconds is None:
            return []
        sent, errors = sum(x[0] for _, x in run), sum(x[1] for _, x in run)
        if sent < self.min_sent or errors < self.min_errors:
            return []
        last = run[-1][0]
        evidence: dict[str, Any] = {
            "sent": sent,
            "errors": errors,
            "error_ratio": round(errors / sent, 3),
            "threshold": self.threshold,
            "keys": {o.name: o.errors for o in last.operations if o.errors},
            "node_errors": {n.node: n.errors for n in last.nodes if n.errors},
            "intervals": len(run),
            "since": since(run),
            "failing_for_s": round(seconds, 3),
        }
        backend = _latest_backend(history)
        if backend is not None:
            evidence["redis_write_probe"] = backend.info.get("write_probe")
            evidence["redis_write_error"] = backend.write_error
        summary = f"{errors} of {sent} rate checks failed over {seconds:.1f}s ({errors / sent:.0%})"
        return [Violation(self.name, "checks", summary, evidence)]


def _latest_backend(history: Sequence[ObsSnapshot]) -> StoreHealth | None:
    found = [b for s in ordered(history) if (b := _backend(s)) is not None]
    return found[-1] if found else None


class HighLatency(Invariant):
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

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        stats = recent_workload(history, workload)
        explained = _explained_by_store(history)
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
        longest = max(slow.values(), key=lambda x: x[0])
        p99 = {node: run[-1][1].p99_ms or 0.0 for node, (_, _, run) in slow.items()}
        evidence = {
            "p99_ms": p99,
            "threshold_ms": self.threshold_ms,
            "checks": {node: checks for node, (_, checks, _) in slow.items()},
            "intervals": len(longest[2]),
            "since": since(longest[2]),
            "slow_for_s": round(longest[0], 3),
        }
        worst = max(p99, key=p99.__getitem__)
        summary = f"rate checks are slow: p99 {p99[worst]:.0f} ms on {worst} (threshold {self.threshold_ms:.0f} ms)"
        return [Violation(self.name, "checks", summary, evidence)]


class NodeOverAdmitting(Invariant):
    """No node admits requests that the shared window would block (no node lets clients past the limit).

    A node that allows without consulting Redis is invisible to Redis (it
    writes nothing), so it is judged from what clients got. At the end of every
    workload interval, for each key ``k`` with limit ``L`` per window ``W`` (the
    window from the snapshots), over sliding windows of the newest intervals:

    1. clients were allowed more than the limit: over the newest intervals
       covering ``W`` (``T`` ≥ ``W`` seconds), ``allowed_k > cap = L * T/W * 1.25 + 2``.
       The shared window admits at most ``L`` per ``W`` whatever the traffic, so
       a correct cluster cannot pass this (the 25% and 2 cover interval edges and
       the client's clock against Redis's). It needs a whole window: inside a
       shorter span a correct limiter may admit its whole ``L`` at once (a window
       that just emptied). With one node admitting everything among three, the
       workload's 4x key gets through at ~2.3x, so (1) holds once ~0.3 s of the
       window is faulty;
    2. and the node's newest decisions on ``k`` — the newest intervals covering
       at least ``grace_s`` = 0.25 s, extended back (at most ``W``) until they
       hold at least ``min_decided`` = 12 — include at most 5% blocked. Under (1)
       the key is over its limit, so every correct node blocks most of its share
       (at 4x with one node failing open, ~62% on average; less while the window
       fills): a correct node blocks none of 12 by chance with p ≈ 0.375^12 ≈ 1e-5
       (with 8, a suite run on a loaded machine once blamed a correct peer too),
       while the over-admitting node blocks none. A node decides ~20 checks/s of
       the 4x key, so 12 take ~0.6 s.

    Each interval gives each node a verdict: *suspect* (1 and 2 on some key:
    the evidence); *innocent* when on some key clients asked for more than the
    cap and the node is seen blocking (over 5% of its newest decisions, even
    fewer than 8: a fail-open node never blocks), or when no key is asked for
    more than its cap (nothing to see); otherwise *no evidence* — the node
    decided too little and blocked none of it (it is restarting), or it blocks
    nothing while (1) does not hold (every node does, just after a window
    emptied). Fires for each node (entity: the node id) whose newest verdict is
    suspect. So it starts only on (1) and (2), and clears only once the node is
    seen blocking again (or no key is over-demanded): (1) dipping below its cap
    never clears it, so it does not flap. A legitimate burst on a key is blocked
    by every node alike and fails (1) and (2); a lowered limit makes every node
    block. The evidence has the per-node counts of each over-admitted key over
    the attribution window.
    """

    name = "node_over_admitting"
    description = "no node admits requests the shared window would block (clients never get more than the limit)"
    grace_s = 0.25
    slack_ratio = 1.25
    slack_abs = 2
    min_decided = 12
    max_blocked_ratio = 0.05

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        stats = recent_workload(history, workload)
        if not stats:
            return []
        windows = {c.key: c.window_s for s in ordered(history) for c in snapshot_details(s).counters}
        verdicts: dict[int, dict[str, list[dict[str, Any]] | None]] = {}

        def verdicts_at(i: int) -> dict[str, list[dict[str, Any]] | None]:
            if i not in verdicts:
                verdicts[i] = self._verdicts(stats[:i + 1], windows)
            return verdicts[i]

        out = []
        for node in sorted({n.node for n in stats[-1].nodes}):
            # walk back from the newest interval: the newest verdict decides, the episode began at
            # the oldest suspect verdict before an innocent one
            newest: list[dict[str, Any]] | None = None
            first = len(stats)
            for i in range(len(stats) - 1, -1, -1):
                here = verdicts_at(i)
                if node not in here:
                    continue
                found = here[node]
                if found is None:
                    break
                newest = newest or found
                first = i
            if newest is None:
                continue
            began = interval_start(stats[first]) if stats[first].ended_at is not None else None
            for_s = ((stats[-1].ended_at - began).total_seconds()
                     if began is not None and stats[-1].ended_at is not None else None)
            k = newest[0]
            own = k["by_node"][node]
            evidence = {
                "node": node,
                "keys": newest,
                "intervals": len(stats) - first,
                "since": iso(began),
                "over_admitting_for_s": round(for_s, 3) if for_s is not None else None,
                "rule": f"allowed over the key's window > limit*T/W*{self.slack_ratio}+{self.slack_abs} and the "
                        f"node blocked <= {self.max_blocked_ratio:.0%} of its newest >= {self.min_decided} "
                        f"checks on the key",
            }
            summary = (f"node {node} blocked {own['blocked']} of {own['allowed'] + own['blocked']} checks on "
                       f"over-limit key {k['key']} while clients were allowed {k['allowed']} against "
                       f"{k['allowed_max']} at most in {k['interval_s']:g}s")
            out.append(Violation(self.name, node, summary, evidence))
        return out

    def _verdicts(self, stats: Sequence[WorkloadStats],
                  windows: dict[str, float]) -> dict[str, list[dict[str, Any]] | None]:
        """Per node, at the newest interval of ``stats``: evidence (a list) if it over-admits, None if
        innocent (see the class doc). Nodes absent: no evidence either way."""
        newest = stats[-1]
        nodes = [n.node for n in newest.nodes]
        suspects: dict[str, list[dict[str, Any]]] = {}
        innocent: set[str] = set()
        over_demanded = False
        for key in [o.name for o in newest.operations]:
            window = windows.get(key)
            demand = trailing(stats, window) if window is not None and window > 0 else None
            if window is None or demand is None:
                continue
            sent, allowed = _key_totals(demand, key)
            limits = [lim for s in demand if (lim := workload_details(s).limits.get(key)) is not None]
            if not limits:
                continue
            cap = max(limits) * total_s(demand) / window * self.slack_ratio + self.slack_abs
            if sent <= cap:
                continue
            over_demanded = True
            for node in nodes:
                recent, enough = self._newest_decisions(stats, node, key, window)
                mine = _by_node(recent, key).get(node, {"allowed": 0, "blocked": 0})
                if mine["blocked"] > self.max_blocked_ratio * (mine["allowed"] + mine["blocked"]):
                    innocent.add(node)
                elif enough and allowed > cap:
                    suspects.setdefault(node, []).append({
                        "key": key, "limit": max(limits), "window_s": window,
                        "interval_s": round(total_s(demand), 3), "allowed": allowed,
                        "allowed_max": round(cap, 1), "decided_over_s": round(total_s(recent), 3),
                        "by_node": _by_node(recent, key),
                    })
        if not over_demanded:
            return {node: None for node in nodes}
        out: dict[str, list[dict[str, Any]] | None] = {node: None for node in innocent - set(suspects)}
        out.update(suspects)
        return out

    def _newest_decisions(self, stats: Sequence[WorkloadStats], node: str, key: str,
                          window: float) -> tuple[list[WorkloadStats], bool]:
        """The newest intervals covering ``grace_s`` in which ``node`` decided at least ``min_decided``
        checks on ``key`` (extended back at most to ``window``), and whether it decided that many.
        Fewer can still show the node blocking (a fail-open node never does), never the opposite."""
        span, decided = 0.0, 0
        for i in range(len(stats) - 1, -1, -1):
            span += stats[i].interval_s
            view = next((n for n in stats[i].nodes if n.node == node), None)
            mine = view.operation(key) if view is not None else None
            decided += mine.answered if mine is not None else 0
            if covers(span, self.grace_s) and decided >= self.min_decided:
                return list(stats[i:]), True
            if covers(span, window):
                break
        return list(stats[i:]), False


def total_s(intervals: Sequence[WorkloadStats]) -> float:
    """Seconds of traffic ``intervals`` cover."""
    return sum(s.interval_s for s in intervals)


def _key_totals(intervals: Sequence[WorkloadStats], key: str) -> tuple[int, int]:
    """Requests on ``key`` over ``intervals``: (sent, allowed)."""
    sent = allowed = 0
    for s in intervals:
        op = s.operation(key)
        if op is not None:
            sent, allowed = sent + op.sent, allowed + op.ok
    return sent, allowed


def _by_node(intervals: Sequence[WorkloadStats], key: str) -> dict[str, dict[str, int]]:
    """Per node, its checks on ``key`` over ``intervals``: sent, allowed, blocked, errors."""
    out: dict[str, dict[str, int]] = {}
    for s in intervals:
        for n in s.nodes:
            mine = n.operation(key)
            if mine is not None:
                c = out.setdefault(n.node, {"sent": 0, "allowed": 0, "blocked": 0, "errors": 0})
                c["sent"] += mine.sent
                c["allowed"] += mine.ok
                c["blocked"] += mine.rejected
                c["errors"] += mine.errors
    return out


INVARIANT_TYPES: tuple[type[Invariant], ...] = (
    NodeDown, OverLimit, FutureDatedEntries, LimitPolicyDrift, RedisUnavailable, ErrorRate, HighLatency,
    NodeOverAdmitting, ObserverBlind)
"""Every invariant the monitor judges for the rate limiter (``observer_blind`` is the shared one)."""

"""The invariants on each rate limiter node: ``node_down`` and ``node_over_admitting``.

``node_down`` is judged from snapshots (heartbeat and ``/health``);
``node_over_admitting`` from what clients got from each node, because a node
that admits without consulting Redis writes nothing Redis could show. The
workload arithmetic it rests on (:func:`total_s`, per-key and per-node totals
over a run of intervals) is here too. Entity: the node id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from events import NodeView, ObsSnapshot, WorkloadStats
from subjects.contract import Invariant, Violation
from subjects.judging import (
    WorkloadInvariant,
    covers,
    held,
    interval_start,
    iso,
    ordered,
    persisted_for,
    persisting,
    trailing,
    usable,
)
from subjects.ratelimiter.details import snapshot_details, workload_details
from subjects.ratelimiter.invariants.snapshots import store_refusing_writes


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
                **persisted_for(run, seconds, "down"),
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


class NodeOverAdmitting(WorkloadInvariant):
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

    def judge(self, stats: list[WorkloadStats], history: Sequence[ObsSnapshot]) -> list[Violation]:
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

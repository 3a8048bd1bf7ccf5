"""The rate limiter's invariants: pure, total functions of snapshot and workload history.

Each is named for what is observed, never for a fault that may cause it. The
judging every subject shares (persistence over a grace period from snapshot
timestamps, stale workload stats, ``observer_blind``) is in
:mod:`subjects.judging`; this package holds only the rate limiter's own rules:
:mod:`.nodes` (``node_down``, ``node_over_admitting``), :mod:`.counters`
(``over_limit``, ``future_dated_entries``, ``limit_policy_drift``), :mod:`.store`
(``redis_unavailable``, ``error_rate``, ``high_latency``), and the readers of a
snapshot they share (:mod:`.snapshots`).

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

from subjects.contract import Invariant
from subjects.judging import ObserverBlind
from subjects.ratelimiter.invariants.counters import FutureDatedEntries, LimitPolicyDrift, OverLimit
from subjects.ratelimiter.invariants.nodes import NodeDown, NodeOverAdmitting, total_s
from subjects.ratelimiter.invariants.snapshots import store_refusing_writes, store_unavailable
from subjects.ratelimiter.invariants.store import ErrorRate, HighLatency, RedisUnavailable

__all__ = [
    "INVARIANT_TYPES",
    "ErrorRate",
    "FutureDatedEntries",
    "HighLatency",
    "LimitPolicyDrift",
    "NodeDown",
    "NodeOverAdmitting",
    "ObserverBlind",
    "OverLimit",
    "RedisUnavailable",
    "store_refusing_writes",
    "store_unavailable",
    "total_s",
]

INVARIANT_TYPES: tuple[type[Invariant], ...] = (
    NodeDown, OverLimit, FutureDatedEntries, LimitPolicyDrift, RedisUnavailable, ErrorRate, HighLatency,
    NodeOverAdmitting, ObserverBlind)
"""Every invariant the monitor judges for the rate limiter (``observer_blind`` is the shared one)."""

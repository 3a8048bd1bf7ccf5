"""The invariants as pure functions: thresholds, grace judged from timestamps, blind snapshots
skipped, stale workload ignored, symptoms inhibited by their cause.

(Their firing on real faults, from real snapshots and workload stats, is in test_remedies.py,
test_catalogue.py, test_redis_faults.py and test_observe.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from events import NodeStats, NodeView, ObsSnapshot, OperationStats, WorkloadStats
from subjects.contract import Invariant
from subjects.judging import ObserverBlind
from subjects.ratelimiter.details import CounterView, NodeProcess, SnapshotDetails, StoreHealth, WorkloadDetails
from subjects.ratelimiter.invariants import (
    INVARIANT_TYPES,
    ErrorRate,
    FutureDatedEntries,
    HighLatency,
    LimitPolicyDrift,
    NodeDown,
    NodeOverAdmitting,
    OverLimit,
    RedisUnavailable,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def invariants() -> list[Invariant]:
    """Every rate limiter invariant, as the observer builds them."""
    return [cls() for cls in INVARIANT_TYPES]


def backend(write: str = "ok", reads: str = "ok") -> StoreHealth:
    ok = write == "ok" and reads == "ok"
    error = None if ok else f"write {write}"
    return StoreHealth(name="redis", ok=ok, latency_ms=0.2, error=error, writable=write == "ok" if reads == "ok"
                       else None, write_error=error, info={"reads": reads, "write_probe": write})


def observation(t: float, *, ok: bool = True, error: str | None = None, nodes: list[NodeView] | None = None,
                details: SnapshotDetails | None = None) -> ObsSnapshot:
    """A v2 snapshot at ``t``: the neutral core plus the rate limiter's ``details``."""
    return ObsSnapshot(subject="ratelimiter", ok=ok, error=error, observed_at=at(t), nodes=nodes or [],
                       details=(details or SnapshotDetails()).model_dump(mode="json"))


def snap(t: float, *, ok: bool = True, down: tuple[str, ...] = (), count: int = 10, limit: int = 20,
         future: int = 0, declared: int | None = 20, write: str = "ok", stale: tuple[str, ...] = (),
         last_seen: float | None = None) -> ObsSnapshot:
    """``down``: nodes whose /health fails; ``stale``: nodes answering /health with a stale heartbeat."""
    if not ok:
        return observation(t, ok=False, error="redis unreachable", details=SnapshotDetails(backend=backend(
            reads="failed")))
    nodes, processes = [], {}
    for n in ("node-1", "node-2"):
        is_down = n in down or n in stale
        seen = at(last_seen) if last_seen is not None and n in stale else at(t)
        nodes.append(NodeView(node=n, status="down" if is_down else "up", detail="x", last_seen=seen))
        processes[n] = NodeProcess(health_ok=n not in down, heartbeat_age_s=(at(t) - seen).total_seconds())
    counter = CounterView(key="k", count=count, limit=limit, window_s=1.0, future_entries=future,
                          declared_limit=declared)
    return observation(t, nodes=nodes, details=SnapshotDetails(counters=[counter], nodes=processes,
                                                               backend=backend(write)))


def entities(inv: object, history: list[ObsSnapshot], workload: list[WorkloadStats] | None = None) -> list[str]:
    return [v.entity for v in inv.evaluate(history, workload or [])]  # type: ignore[attr-defined]


def test_every_invariant_is_total_on_an_empty_history_and_documents_its_grace() -> None:
    assert [i.name for i in invariants()] == ["node_down", "over_limit", "future_dated_entries",
                                              "limit_policy_drift", "redis_unavailable", "error_rate",
                                              "high_latency", "node_over_admitting", "observer_blind"]
    assert all(i.evaluate([], []) == [] for i in invariants())
    assert all(i.evaluate([snap(0, ok=False)], [stats(0.5)]) == [] for i in invariants())
    assert all((i.__doc__ and "grace" in i.__doc__.lower()) or i.name == "observer_blind" for i in invariants())


# -- snapshot invariants --------------------------------------------------------------------


def test_node_down_needs_two_snapshots_spanning_the_grace() -> None:
    inv = NodeDown()
    assert entities(inv, [snap(0), snap(0.25, down=("node-2",))]) == []  # one snapshot is no evidence
    # at the monitor's 0.25 s cadence, two consecutive snapshots: the second one fires it
    assert entities(inv, [snap(0.25, down=("node-2",)), snap(0.5, down=("node-2",))]) == ["node-2"]
    fast = [snap(0.05 * i, down=("node-2",)) for i in range(4)]  # 0.15 s: not yet
    assert entities(inv, fast) == []
    assert entities(inv, [*fast, snap(0.2, down=("node-2",))]) == ["node-2"]
    assert entities(inv, [snap(0, down=("node-2",)), snap(0.25, down=("node-2",)), snap(0.5)]) == []


def test_node_down_is_not_cleared_by_blindness_and_ignores_order() -> None:
    inv = NodeDown()
    history = [snap(1.0, ok=False), snap(0.5, down=("node-1",)), snap(1.5, down=("node-1",)), snap(2, ok=False)]
    [v] = inv.evaluate(history, [WorkloadStats(interval_s=1, nodes=[NodeStats(node="node-1", errors=7)])])
    assert v.entity == "node-1" and v.evidence["down_for_s"] == 1.0 and v.evidence["snapshots"] == 2
    assert v.evidence["client_errors_last_interval"] == 7 and v.evidence["node"] == "node-1"


def test_a_stale_heartbeat_while_redis_refuses_writes_is_not_node_down() -> None:
    inv = NodeDown()
    paused = [snap(0, write="timeout"), snap(0.5, write="timeout", stale=("node-1",), last_seen=-1.0),
              snap(1.0, write="timeout", stale=("node-1",), last_seen=-1.0)]
    assert entities(inv, paused) == []
    # just after the pause is lifted the heartbeat is still stale: still excused (it predates the refusal)
    after = [*paused, snap(1.5, stale=("node-1",), last_seen=-1.0), snap(2.0, stale=("node-1",), last_seen=-1.0)]
    assert entities(inv, after) == []
    # a stale heartbeat with writes accepted all along is the node's own problem
    assert entities(inv, [snap(0.5, stale=("node-1",), last_seen=-2.0), snap(1.0, stale=("node-1",),
                                                                              last_seen=-2.0)]) == ["node-1"]
    # an announced restart is no incident while it lasts, but a node already down stays violated through it
    planned = [snap(1.0 + 0.5 * i, down=("node-2",)).model_copy(update={"nodes": [
        n.model_copy(update={"maintenance": "restart_node until later"}) if n.node == "node-2" else n
        for n in snap(1.0 + 0.5 * i, down=("node-2",)).nodes]}) for i in range(3)]
    assert entities(inv, planned) == []
    assert entities(inv, [snap(0, down=("node-2",)), snap(0.5, down=("node-2",)), *planned]) == ["node-2"]
    assert entities(inv, [snap(0, down=("node-2",)), snap(0.5, down=("node-2",)), *planned, snap(2.5)]) == []
    # and a node whose /health fails is down whatever Redis does
    assert entities(inv, [snap(0.5, write="timeout", down=("node-2",)),
                          snap(1.0, write="timeout", down=("node-2",))]) == ["node-2"]


def test_over_limit_uses_a_tolerance_the_grace_and_the_highest_recent_limit() -> None:
    inv = OverLimit()
    assert entities(inv, [snap(0, count=22), snap(0.5, count=22)]) == []  # 22 <= 20 * 1.1
    assert entities(inv, [snap(0, count=23), snap(0.5, count=23)]) == ["k"]
    assert entities(inv, [snap(0, count=23), snap(0.1, count=23)]) == []
    assert entities(inv, [snap(0, count=80), snap(0.5, count=10)]) == []
    # future-dated entries are future_dated_entries', not over_limit's
    assert entities(inv, [snap(0, count=80, future=60), snap(0.5, count=80, future=60)]) == []
    # a limit lowered from 40 to 10: the window filled under 40 may hold it for one window
    lowered = [snap(0, count=35, limit=40), snap(0.3, count=35, limit=10), snap(0.8, count=30, limit=10)]
    assert entities(inv, lowered) == []
    assert entities(inv, [*lowered, snap(1.4, count=30, limit=10), snap(1.9, count=30, limit=10)]) == ["k"]


def test_future_dated_entries_fires_on_any_future_entry_held_through_the_grace() -> None:
    inv = FutureDatedEntries()
    assert entities(inv, [snap(0, future=1), snap(0.1, future=1)]) == []
    [v] = inv.evaluate([snap(0, future=1), snap(0.5, future=2, count=5)], [])
    assert v.entity == "k" and v.evidence["future_entries"] == 2 and v.evidence["over_limit"] is False
    assert entities(inv, [snap(0, future=3), snap(0.5, ok=False), snap(1.0, future=3)]) == ["k"]
    assert entities(inv, [snap(0, future=3), snap(0.5, future=3), snap(1.0)]) == []


def test_limit_policy_drift_compares_the_limit_in_force_with_the_declared_one() -> None:
    inv = LimitPolicyDrift()
    assert entities(inv, [snap(0, limit=5), snap(0.1, limit=5)]) == []
    [v] = inv.evaluate([snap(0, limit=5), snap(0.5, limit=5)], [])
    assert v.entity == "k" and v.evidence["limit"] == 5 and v.evidence["declared_limit"] == 20
    assert entities(inv, [snap(0, limit=80), snap(0.5, limit=80)]) == ["k"]
    assert entities(inv, [snap(0, limit=5, declared=None), snap(0.5, limit=5, declared=None)]) == []
    assert entities(inv, [snap(0, limit=5), snap(0.5, limit=5), snap(1.0)]) == []


def test_redis_unavailable_on_failed_reads_or_timed_out_writes_not_on_refusals() -> None:
    inv = RedisUnavailable()
    [v] = inv.evaluate([snap(0, write="timeout"), snap(0.5, write="timeout")], [])
    assert v.entity == "redis" and v.evidence["write_probe"] == "timeout" and v.evidence["reads"] == "ok"
    assert entities(inv, [snap(0, ok=False), snap(0.5, write="timeout")]) == ["redis"]
    assert entities(inv, [snap(0, write="timeout"), snap(0.1, write="timeout")]) == []
    assert entities(inv, [snap(0, write="oom"), snap(0.5, write="oom")]) == []
    blind = observation(0.5, ok=False, error="observation timed out")
    assert entities(inv, [snap(0, write="timeout"), blind, snap(1.0, write="timeout")]) == []


def test_observer_blind_needs_two_consecutive_failures() -> None:
    inv = ObserverBlind()
    assert entities(inv, [snap(0, ok=False)]) == []
    assert entities(inv, [snap(0, ok=False), snap(0.5), snap(1, ok=False)]) == []
    [v] = inv.evaluate([snap(0), snap(0.5, ok=False), snap(0.6, ok=False)], [])
    assert v.entity == "observer" and v.evidence["failures"] == 2 and v.evidence["error"] == "redis unreachable"


# -- workload invariants --------------------------------------------------------------------


def stats(end: float, interval: float = 0.5, *, sent: int = 40, errors: int = 0, p99: float = 2.0,
          nodes: dict[str, tuple[int, int]] | None = None, limit: int = 20, stamped: bool = True) -> WorkloadStats:
    """One interval ending at ``end``: one operation, key ``k`` (its reported ``limit`` in the details).
    ``nodes``: node -> (allowed, blocked) on key ``k``."""
    nodes = nodes or {"node-1": (sent // 2, 0), "node-2": (sent - sent // 2 - errors, 0)}
    allowed = sum(a for a, _ in nodes.values())
    blocked = sum(b for _, b in nodes.values())
    return WorkloadStats(
        interval_s=interval,
        operations=[OperationStats(name="k", sent=allowed + blocked + errors, ok=allowed, rejected=blocked,
                                   errors=errors)],
        nodes=[NodeStats(node=n, sent=a + b, ok=a, rejected=b, p50_ms=1.0, p99_ms=p99,
                         operations=[OperationStats(name="k", sent=a + b, ok=a, rejected=b)])
               for n, (a, b) in nodes.items()],
        ended_at=at(end) if stamped else None,
        details=WorkloadDetails(limits={"k": limit}).model_dump(),
    )


def healthy(until: float) -> list[ObsSnapshot]:
    return [snap(0.5 * i) for i in range(int(until / 0.5) + 1)]


def test_error_rate_fires_on_half_a_second_of_failing_quarter_second_intervals() -> None:
    inv = ErrorRate()
    history = healthy(3)
    # the store starts refusing writes at 2.6: the interval ending 2.75 is 60% errors, the next all errors
    ok = [stats(2.25 + 0.25 * i, 0.25, sent=44) for i in range(2)]
    failing = [stats(2.75, 0.25, sent=44, errors=26), stats(3.0, 0.25, sent=44, errors=44)]
    assert entities(inv, history, [*ok, failing[0]]) == []  # one interval is not yet half a second
    [v] = inv.evaluate(history, [*ok, *failing])  # 0.4 s after the store began failing
    assert v.evidence["errors"] == 70 and v.evidence["sent"] == 88 and v.evidence["intervals"] == 2
    assert v.evidence["failing_for_s"] == 0.5 and v.evidence["redis_write_probe"] == "ok"
    assert v.entity == "checks" and v.summary == "70 of 88 rate checks failed over 0.5s (80%)"
    assert {"keys", "node_errors", "error_ratio", "threshold"} <= set(v.evidence)
    # the same rule over longer intervals (an older run's 0.5 s ones): 12.5% fires, 7.5% does not
    assert entities(inv, history, [stats(2.5, errors=5), stats(3.0, errors=5)]) == ["checks"]
    assert entities(inv, history, [stats(2.5, errors=3), stats(3.0, errors=3)]) == []
    # once checks succeed again it clears at the first interval under the threshold
    assert entities(inv, history, [*ok, *failing, stats(3.25, 0.25, sent=44, errors=4)]) == []


def test_one_error_or_one_bad_interval_never_trips_error_rate() -> None:
    inv = ErrorRate()
    history = healthy(3)
    one_each = [stats(1.0 + 0.25 * i, 0.25, sent=44, errors=1) for i in range(9)]  # 2% of every interval
    assert entities(inv, history, one_each) == []
    burst = [stats(2.5, 0.25, sent=44), stats(2.75, 0.25, sent=44, errors=40), stats(3.0, 0.25, sent=44)]
    assert entities(inv, history, burst) == []  # errors inside one interval: not half a second of them
    assert entities(inv, history, [*burst, stats(3.25, 0.25, sent=44, errors=40)]) == []  # not in a row


def test_error_rate_needs_enough_requests_and_errors_as_counts_not_only_a_ratio() -> None:
    inv = ErrorRate()
    history = healthy(3)
    trickle = [stats(2.75, 0.25, sent=4, errors=4), stats(3.0, 0.25, sent=4, errors=4)]
    assert entities(inv, history, trickle) == []  # 8 requests: too few to call it a rate
    few = [stats(2.5 + 0.25 * i, 0.25, sent=10, errors=2) for i in range(2)]  # 20%, but 4 errors
    assert entities(inv, history, few) == []
    assert entities(inv, history, [stats(2.25, 0.25, sent=10, errors=2), *few]) == ["checks"]  # 6 of 30


def test_error_rate_ignores_stale_stats_and_defers_to_redis_unavailable() -> None:
    inv = ErrorRate()
    failing = [stats(2.5, errors=20), stats(3.0, errors=20)]
    assert entities(inv, healthy(6.5), failing) == []  # the load generator stopped 3.5 s ago
    assert entities(inv, healthy(5.5), failing) == ["checks"]
    outage = [*healthy(2.0), snap(2.5, write="timeout"), snap(3.0, write="timeout")]
    assert entities(inv, outage, failing) == []
    # once Redis is back, intervals that overlapped the outage stay explained; new failures count
    recovered = [*outage, snap(3.5), snap(4.0), snap(4.5), snap(5.0)]
    assert entities(inv, recovered, failing) == []
    assert entities(inv, recovered, [*failing, stats(4.0, errors=20), stats(4.5, errors=20)]) == []  # 0.5 s slack
    assert entities(inv, recovered, [*failing, stats(4.5, errors=20), stats(5.0, errors=20)]) == ["checks"]
    # unstamped stats: inhibited only while the newest snapshot shows the outage
    unstamped = [stats(0, errors=20, stamped=False), stats(0, errors=20, stamped=False)]
    assert entities(inv, outage, unstamped) == []
    assert entities(inv, recovered, unstamped) == ["checks"]


def p99_on(end: float, p99: dict[str, float], sent: int = 40, interval: float = 0.25) -> WorkloadStats:
    """An interval in which each node of ``p99`` answered half of ``sent`` checks with that p99."""
    base = stats(end, interval, sent=sent)
    return base.model_copy(update={"nodes": [n.model_copy(update={"p99_ms": p99.get(n.node, 2.0)})
                                             for n in base.nodes]})


def test_high_latency_needs_a_whole_second_of_slow_intervals_on_a_node() -> None:
    inv = HighLatency()
    history = healthy(3)
    slow = [p99_on(2.0 + 0.25 * i, {"node-1": 250 + i}) for i in range(1, 5)]  # 2.25 .. 3.0
    [v] = inv.evaluate(history, slow)
    assert v.entity == "checks" and v.evidence["p99_ms"] == {"node-1": 254} and v.evidence["intervals"] == 4
    assert v.evidence["checks"] == {"node-1": 80} and v.evidence["slow_for_s"] == 1.0
    assert entities(inv, history, slow[1:]) == []  # 0.75 s
    assert entities(inv, history, [p99_on(2.25, {"node-1": 150}), *slow[1:]]) == []  # 150 ms is fast enough
    # too few checks for a p99: 4 per interval for a second, then a fifth interval makes 20
    thin = [p99_on(2.0 + 0.25 * i, {"node-1": 300}, sent=8) for i in range(1, 5)]
    assert entities(inv, history, thin) == []
    assert entities(inv, history, [p99_on(2.0, {"node-1": 300}, sent=8), *thin]) == ["checks"]


def test_one_slow_request_or_interval_never_trips_high_latency() -> None:
    inv = HighLatency()
    history = healthy(3)
    # a slow request now and then is one interval's p99 at 0.25 s: slow intervals that are not in a row
    spotty = [p99_on(1.0 + 0.25 * i, {"node-1": 400 if i % 2 else 3.0}) for i in range(9)]
    assert entities(inv, history, spotty) == []
    # nodes slow by turns are no node slow for a second
    turns = [p99_on(2.0 + 0.25 * i, {"node-1" if i % 2 else "node-2": 300}) for i in range(1, 5)]
    assert entities(inv, history, turns) == []
    outage = [*healthy(2.0), snap(2.5, write="timeout"), snap(3.0, write="timeout")]
    assert entities(inv, outage, [p99_on(2.0 + 0.25 * i, {"node-1": 300}) for i in range(1, 5)]) == []


# -- node_over_admitting: key k, limit 20 per 1 s window, asked at 4x (80/s: 20 per 0.25 s interval) --------


def checkout(end: float, nodes: dict[str, tuple[int, int]], interval: float = 0.25) -> WorkloadStats:
    """One interval of key k: node -> (allowed, blocked)."""
    return stats(end, interval, nodes=nodes)


def correct(end: float) -> WorkloadStats:
    """A correct cluster at 4x: the window admits 5 per quarter second, every node blocks most of its share."""
    return checkout(end, {"node-1": (2, 5), "node-2": (2, 5), "node-3": (1, 5)})


def fail_open(end: float) -> WorkloadStats:
    """node-2 admits its whole share (7) without Redis; the others share the window's 5 and block the rest."""
    return checkout(end, {"node-1": (3, 4), "node-2": (7, 0), "node-3": (2, 4)})


def restarting(end: float) -> WorkloadStats:
    """node-2 is restarting: it decides nothing; the others take its share."""
    return checkout(end, {"node-1": (3, 7), "node-2": (0, 0), "node-3": (2, 8)})


def at_4x(end: float, faulty: bool = True) -> WorkloadStats:
    return fail_open(end) if faulty else correct(end)


def quarters(first: float, *kinds: Any) -> list[WorkloadStats]:
    """Consecutive quarter-second intervals, the first ending at ``first``: one per factory in ``kinds``."""
    return [kind(first + 0.25 * i) for i, kind in enumerate(kinds)]


def test_node_over_admitting_names_the_fail_open_node_half_a_second_after_it_began() -> None:
    inv = NodeOverAdmitting()
    history = healthy(4)
    # node-2 fails open at 2.0: the intervals ending 2.25 and later are faulty
    before = quarters(1.25, correct, correct, correct, correct)
    assert entities(inv, history, [*before, fail_open(2.25)]) == []  # a quarter second: 27 allowed, not over 27
    [v] = inv.evaluate(history, [*before, fail_open(2.25), fail_open(2.5)])
    assert v.entity == "node-2" and v.evidence["node"] == "node-2"
    [k] = v.evidence["keys"]
    assert k["key"] == "k" and k["allowed"] == 34 and k["allowed_max"] == 27.0  # 20 * 1.0/1.0 * 1.25 + 2
    assert k["interval_s"] == 1.0 and k["decided_over_s"] == 0.5
    assert k["by_node"]["node-2"] == {"sent": 14, "allowed": 14, "blocked": 0, "errors": 0}
    assert k["by_node"]["node-1"]["blocked"] == 8 and k["by_node"]["node-3"]["blocked"] == 8
    assert "node-2 blocked 0 of 14" in v.summary and v.evidence["since"] == at(2.25).isoformat()
    # the peers, seen blocking, are never suspects
    assert entities(inv, history, [*before, *quarters(2.25, *[fail_open] * 6)]) == ["node-2"]


def test_node_over_admitting_holds_while_the_node_restarts_and_clears_once_it_blocks_again() -> None:
    inv = NodeOverAdmitting()
    history = healthy(5)
    episode = [*quarters(1.25, correct, correct, correct, correct), *quarters(2.25, *[fail_open] * 3)]
    assert entities(inv, history, episode) == ["node-2"]
    # restarting, it decides nothing: no evidence either way, however long, and (1) falling under its
    # cap as the window refills does not clear it either
    down = [*episode, *quarters(3.0, *[restarting] * 4)]
    assert entities(inv, history, down) == ["node-2"]
    # back, it blocks like its peers: cleared at the first interval in which it is seen blocking
    assert entities(inv, history, [*down, correct(4.0)]) == []
    assert entities(inv, history, [*episode, fail_open(3.0), correct(3.25)]) == []


def test_node_over_admitting_stays_quiet_for_a_correct_cluster_at_any_moment() -> None:
    inv = NodeOverAdmitting()
    history = healthy(6)
    # start-up: the empty window admits the first 20 at once (every node blocks none of its share), then
    # nothing until those entries age out, then the steady state
    start = [checkout(0.25, {"node-1": (7, 0), "node-2": (7, 0), "node-3": (6, 0)}),
             *quarters(0.5, *[lambda end: checkout(end, {"node-1": (0, 7), "node-2": (0, 7), "node-3": (0, 6)})] * 3),
             *quarters(1.25, *[correct] * 8)]
    for n in range(1, len(start) + 1):  # judged at every interval's arrival
        assert entities(inv, history, start[:n]) == [], n
    # a correct node that happens to block none of its newest few checks is not a suspect
    lucky = checkout(3.5, {"node-1": (2, 5), "node-2": (4, 0), "node-3": (1, 8)})
    assert entities(inv, history, [*start, lucky]) == []
    # under the limit nobody blocks and nobody gets more than the limit
    under = [checkout(0.25 * i, {"node-1": (1, 0), "node-2": (1, 0), "node-3": (1, 0)}) for i in range(1, 9)]
    assert entities(inv, history, under) == []
    # a lowered limit: more than the new limit got through while it changed, but every node blocks
    lowered = [stats(0.25 * i, 0.25, limit=4, nodes={"node-1": (3, 4), "node-2": (3, 4)}) for i in range(1, 9)]
    assert entities(inv, history, lowered) == []
    # a legitimate burst on the key from elsewhere: our clients get little through, every node blocks
    burst = [checkout(0.25 * i, {"node-1": (0, 7), "node-2": (1, 6), "node-3": (0, 7)}) for i in range(1, 9)]
    assert entities(inv, history, burst) == []
    # without a window (no snapshot of the key) there is no judging; nor on stale stats
    assert entities(inv, [], quarters(2.25, *[fail_open] * 4)) == []
    assert entities(inv, healthy(7), quarters(2.25, *[fail_open] * 4)) == []


def test_node_over_admitting_judges_an_older_runs_one_second_intervals_alike() -> None:
    inv = NodeOverAdmitting()
    # 1 s intervals of a 2.5x key (50/s, limit 20): node-2 admits its 17, the others share the window's 20
    faulty = stats(3.0, 1.0, nodes={"node-1": (10, 6), "node-2": (17, 0), "node-3": (10, 7)})
    fine = stats(2.0, 1.0, nodes={"node-1": (7, 10), "node-2": (7, 9), "node-3": (6, 11)})
    assert entities(inv, healthy(3), [fine]) == []
    assert entities(inv, healthy(3), [fine, faulty]) == ["node-2"]


def test_evidence_is_json_serialisable() -> None:
    import json

    history: list[Any] = [snap(0, write="timeout", future=2, limit=5), snap(0.5, write="timeout", future=2, limit=5,
                                                                            down=("node-1",))]
    history += [snap(1.0, write="timeout", future=2, limit=5, down=("node-1",))]
    workload = [at_4x(0.5), at_4x(1.0)]
    found = [v for inv in invariants() for v in inv.evaluate(history, workload)]
    assert {v.invariant for v in found} >= {"node_down", "future_dated_entries", "limit_policy_drift",
                                            "redis_unavailable"}
    for v in found:
        json.dumps(v.evidence)

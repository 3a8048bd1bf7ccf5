"""The invariants as pure functions: grace judged from snapshot timestamps, blind snapshots skipped.

(Their firing on real faults, from real snapshots, is in test_remedies.py and test_observe.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events import CounterView, NodeStats, NodeView, ObsSnapshot, WorkloadStats
from subjects.ratelimiter.invariants import NodeDown, ObserverBlind, OverLimit, invariants

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def snap(t: float, *, ok: bool = True, down: tuple[str, ...] = (), count: int = 10) -> ObsSnapshot:
    if not ok:
        return ObsSnapshot(subject="ratelimiter", ok=False, error="redis unreachable",
                           observed_at=T0 + timedelta(seconds=t))
    return ObsSnapshot(
        subject="ratelimiter", ok=True, observed_at=T0 + timedelta(seconds=t),
        nodes=[NodeView(node=n, status="down" if n in down else "up", detail="x") for n in ("node-1", "node-2")],
        counters=[CounterView(key="k", count=count, limit=20, window_s=1.0)],
    )


def entities(inv: object, history: list[ObsSnapshot], workload: list[WorkloadStats] | None = None) -> list[str]:
    return [v.entity for v in inv.evaluate(history, workload or [])]  # type: ignore[attr-defined]


def test_every_invariant_is_total_on_an_empty_history() -> None:
    assert [i.name for i in invariants()] == ["node_down", "over_limit", "observer_blind"]
    assert all(i.evaluate([], []) == [] for i in invariants())
    assert all((i.__doc__ and "grace" in i.__doc__.lower()) or i.name == "observer_blind" for i in invariants())


def test_node_down_needs_two_snapshots_spanning_the_grace() -> None:
    inv = NodeDown()
    assert entities(inv, [snap(0), snap(0.5, down=("node-2",))]) == []
    assert entities(inv, [snap(0.5, down=("node-2",)), snap(1.0, down=("node-2",))]) == ["node-2"]
    fast = [snap(0.1 * i, down=("node-2",)) for i in range(4)]  # 0.3 s: not yet
    assert entities(inv, fast) == []
    assert entities(inv, [*fast, snap(0.4, down=("node-2",))]) == ["node-2"]
    assert entities(inv, [snap(0, down=("node-2",)), snap(0.5, down=("node-2",)), snap(1.0)]) == []


def test_node_down_is_not_cleared_by_blindness_and_ignores_order() -> None:
    inv = NodeDown()
    history = [snap(1.0, ok=False), snap(0.5, down=("node-1",)), snap(1.5, down=("node-1",)), snap(2, ok=False)]
    [v] = inv.evaluate(history, [WorkloadStats(interval_s=1, nodes=[NodeStats(node="node-1", errors=7)])])
    assert v.entity == "node-1" and v.evidence["down_for_s"] == 1.0 and v.evidence["snapshots"] == 2
    assert v.evidence["client_errors_last_interval"] == 7 and v.evidence["node"] == "node-1"


def test_over_limit_uses_a_tolerance_and_the_grace() -> None:
    inv = OverLimit()
    assert entities(inv, [snap(0, count=22), snap(0.5, count=22)]) == []  # 22 <= 20 * 1.1
    assert entities(inv, [snap(0, count=23), snap(0.5, count=23)]) == ["k"]
    assert entities(inv, [snap(0, count=23), snap(0.3, count=23)]) == []
    assert entities(inv, [snap(0, count=80), snap(0.5, count=10)]) == []


def test_observer_blind_needs_two_consecutive_failures() -> None:
    inv = ObserverBlind()
    assert entities(inv, [snap(0, ok=False)]) == []
    assert entities(inv, [snap(0, ok=False), snap(0.5), snap(1, ok=False)]) == []
    [v] = inv.evaluate([snap(0), snap(0.5, ok=False), snap(0.6, ok=False)], [])
    assert v.entity == "observer" and v.evidence["failures"] == 2 and v.evidence["error"] == "redis unreachable"

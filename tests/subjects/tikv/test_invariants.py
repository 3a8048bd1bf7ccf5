"""TiKV's invariants: pure functions of synthetic histories, named for what is observed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events import NodeView, ObsSnapshot, OperationStats, WorkloadStats
from subjects.tikv.details import PDMember, RegionHealth, SnapshotDetails, StoreFacts, WorkloadDetails
from subjects.tikv.invariants import (
    AcknowledgedWriteLost,
    KVErrorRate,
    PDMemberDown,
    PDNoHealthyLeader,
    RegionsUnderReplicated,
    StoreNotUp,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MEMBERS = [PDMember(name="pd0", healthy=True, leader=True), PDMember(name="pd1", healthy=True),
           PDMember(name="pd2", healthy=True)]


def snap(i: float, *, down: str | None = None, state: str = "Up", regions: RegionHealth | None = None,
         members: list[PDMember] | None = None, ok: bool = True) -> ObsSnapshot:
    at = T0 + timedelta(seconds=0.5 * i)
    nodes, stores = [], {}
    for n in ("tikv1", "tikv2", "tikv3"):
        bad = n == down
        nodes.append(NodeView(node=n, status="down" if bad else "up", state=state if bad else "Up", last_seen=at,
                              detail="status port cannot connect" if bad else "1 leaders, 3 regions"))
        stores[n] = StoreFacts(id=int(n[-1]), pd_state=state if bad else "Up", probe_ok=not bad,
                               probe_error="cannot connect" if bad else None)
    details = SnapshotDetails(stores=stores, regions=regions or RegionHealth(total=3),
                              pd=members if members is not None else MEMBERS)
    return ObsSnapshot(subject="tikv", ok=ok, observed_at=at, nodes=nodes if ok else [],
                       details=details.model_dump(mode="json") if ok else {})


def stats(i: int, sent: int, errors: int, lost: int = 0) -> WorkloadStats:
    return WorkloadStats(interval_s=1.0, ended_at=T0 + timedelta(seconds=i),
                         operations=[OperationStats(name="put", sent=sent, ok=sent - errors, errors=errors)],
                         details=WorkloadDetails(acked_total=100, verified_total=50, lost_total=lost,
                                                 lost_keys=["0001/r/1"] if lost else []).model_dump())


def test_a_store_not_up_through_the_grace_is_a_violation_and_one_bad_snapshot_is_not() -> None:
    assert StoreNotUp().evaluate([snap(0), snap(1, down="tikv2")], []) == []
    [v] = StoreNotUp().evaluate([snap(0), snap(1, down="tikv2"), snap(2, down="tikv2")], [])
    assert (v.invariant, v.entity) == ("store_not_up", "tikv2")
    assert v.evidence["status_port"] == "cannot connect" and v.evidence["not_up_for_s"] == 0.5


def test_pds_own_state_counts_even_when_the_status_port_answers() -> None:
    history = [snap(i, down="tikv3", state="Disconnected") for i in range(3)]
    [v] = StoreNotUp().evaluate(history, [])
    assert v.evidence["pd_state"] == "Disconnected"


def test_a_blind_spell_neither_starts_nor_ends_a_store_violation() -> None:
    history = [snap(0, down="tikv1"), snap(1, ok=False), snap(2, down="tikv1")]
    assert [v.entity for v in StoreNotUp().evaluate(history, [])] == ["tikv1"]


def test_regions_missing_or_down_peers_are_under_replicated_pending_ones_are_not() -> None:
    short = RegionHealth(total=3, miss_peer=2, down_peer=1, pending_peer=1)
    history = [snap(i, regions=short) for i in range(4)]
    [v] = RegionsUnderReplicated().evaluate(history, [])
    assert (v.evidence["miss_peer"], v.evidence["down_peer"], v.evidence["pending_peer"]) == (2, 1, 1)
    catching_up = [snap(i, regions=RegionHealth(total=3, pending_peer=3)) for i in range(4)]
    assert RegionsUnderReplicated().evaluate(catching_up, []) == []


def test_pd_without_a_leader_or_with_an_unhealthy_one() -> None:
    leaderless = [PDMember(name=m.name, healthy=True) for m in MEMBERS]
    assert PDNoHealthyLeader().evaluate([snap(i, members=leaderless) for i in range(4)], [])[0].evidence[
        "reason"] == "no PD member is the leader"
    sick = [PDMember(name="pd0", healthy=False, leader=True), *MEMBERS[1:]]
    [v] = PDNoHealthyLeader().evaluate([snap(i, members=sick) for i in range(4)], [])
    assert v.summary == "PD: the leader pd0 is unhealthy"
    assert PDNoHealthyLeader().evaluate([snap(i) for i in range(4)], []) == []


def test_an_unhealthy_follower_is_a_member_down_and_the_leader_is_left_to_the_leader_rule() -> None:
    members = [MEMBERS[0], PDMember(name="pd1", healthy=False), MEMBERS[2]]
    [v] = PDMemberDown().evaluate([snap(i, members=members) for i in range(4)], [])
    assert (v.entity, v.evidence["leader"]) == ("pd1", "pd0")
    sick_leader = [PDMember(name="pd0", healthy=False, leader=True), *MEMBERS[1:]]
    assert PDMemberDown().evaluate([snap(i, members=sick_leader) for i in range(4)], []) == []


def test_client_errors_over_the_threshold_through_two_intervals() -> None:
    history = [snap(i) for i in range(8)]
    assert KVErrorRate().evaluate(history, [stats(1, 50, 10)]) == []  # one interval is not enough
    [v] = KVErrorRate().evaluate(history, [stats(1, 50, 10), stats(2, 50, 6)])
    assert v.evidence["errors"] == 16 and v.evidence["sent"] == 100
    assert v.entity == "kv" and v.summary.startswith("16 of 100 KV operations failed over ")
    assert {"operations", "stores", "error_ratio", "threshold", "failing_for_s"} <= set(v.evidence)
    assert KVErrorRate().evaluate(history, [stats(1, 50, 1), stats(2, 50, 2)]) == []
    assert KVErrorRate().evaluate(history, [stats(1, 10, 9), stats(2, 10, 9)]) == []  # too few to judge


def test_a_lost_acknowledged_write_is_a_violation_at_once_and_does_not_heal() -> None:
    history = [snap(i) for i in range(4)]
    assert AcknowledgedWriteLost().evaluate(history, [stats(1, 50, 0)]) == []
    [v] = AcknowledgedWriteLost().evaluate(history, [stats(1, 50, 0, lost=1)])
    assert v.entity == "kv" and v.evidence["keys"] == ["0001/r/1"]
    later = [stats(1, 50, 0, lost=1), stats(2, 50, 0, lost=1)]  # cumulative: still there
    assert AcknowledgedWriteLost().evaluate(history, later)

"""TiKV's invariants, named for what is observed: pure, total functions of snapshot and workload history.

The shared judging (grace periods from snapshot timestamps, stale workload stats,
``observer_blind``) is :mod:`subjects.judging`.

- ``store_not_up`` (per store, 0.4 s): PD reads it anything but ``Up``, or its status
  port does not answer. The probe is what sees a killed store at the next
  observation; PD alone would wait 20 s to call it ``Disconnected``.
- ``regions_under_replicated`` (1 s): PD counts regions with a missing peer or a down
  peer. Pending peers (catching up) are evidence, not a violation.
- ``pd_no_healthy_leader`` (1 s): PD's members answer but none leads, or the leader is unhealthy.
- ``pd_member_down`` (per member, 1 s): a PD member other than the leader reports unhealthy.
- ``kv_error_rate`` (2 intervals, 1 s): ≥ 10 % of ≥ 20 client operations failed.
- ``acknowledged_write_lost`` (at once): the prober read back an acknowledged write missing
  or different. Data loss is a fact, not a flicker: no grace, and as the workload
  reports it cumulatively the violation never clears by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events import NodeView, ObsSnapshot, WorkloadStats
from subjects.contract import Invariant, Violation
from subjects.judging import (
    EntityCondition,
    ErrorRateInvariant,
    ObserverBlind,
    SnapshotCondition,
    WorkloadInvariant,
    iso,
    persisted_for,
    usable,
)
from subjects.tikv.details import PDMember, RegionHealth, snapshot_details, workload_details


class StoreNotUp(EntityCondition[NodeView]):
    name = "store_not_up"
    description = "every TiKV store is Up in PD and answers on its status port"
    grace_s = 0.4

    def entities(self, newest: ObsSnapshot) -> list[str]:
        return [n.node for n in newest.nodes]

    def condition(self, snap: ObsSnapshot, name: str) -> NodeView | None:
        view = snap.node(name)
        return view if view is not None and view.status != "up" else None

    def violation(self, name: str, run: list[tuple[ObsSnapshot, NodeView]], seconds: float) -> Violation:
        last, view = run[-1]
        facts = snapshot_details(last).stores.get(view.node)
        evidence: dict[str, Any] = {
            "store": view.node, "address": view.address, "pd_state": view.state, "detail": view.detail,
            "store_id": facts.id if facts else None,
            "status_port": None if facts is None else ("ok" if facts.probe_ok else facts.probe_error),
            "last_heartbeat": iso(view.last_seen), **persisted_for(run, seconds, "not_up"),
        }
        return Violation(self.name, view.node, f"store {view.node} is not up ({view.detail})", evidence)


class RegionsUnderReplicated(SnapshotCondition[RegionHealth]):
    name = "regions_under_replicated"
    description = "no region misses a peer or has a down peer (PD's region checks)"
    grace_s = 1.0

    def judged(self, history: Sequence[ObsSnapshot]) -> list[ObsSnapshot]:
        """The usable snapshots in which PD's region counts were read (one without them is no evidence)."""
        return [s for s in usable(history) if snapshot_details(s).regions is not None]

    def condition(self, snap: ObsSnapshot) -> RegionHealth | None:
        regions = snapshot_details(snap).regions
        return regions if regions is not None and regions.under_replicated > 0 else None

    def violation(self, run: list[tuple[ObsSnapshot, RegionHealth]], seconds: float) -> Violation:
        last, regions = run[-1]
        not_up = [n.node for n in last.nodes if n.status != "up"]
        evidence = {"miss_peer": regions.miss_peer, "down_peer": regions.down_peer,
                    "pending_peer": regions.pending_peer, "regions": regions.total, "stores_not_up": not_up,
                    "since": iso(run[0][0].observed_at), "under_replicated_for_s": round(seconds, 3)}
        summary = (f"{regions.under_replicated} region(s) under-replicated ({regions.miss_peer} missing a peer, "
                   f"{regions.down_peer} with a down peer)")
        return Violation(self.name, "regions", summary, evidence)


def _members(snap: ObsSnapshot) -> list[PDMember]:
    return snapshot_details(snap).pd


class PDNoHealthyLeader(SnapshotCondition[str]):
    name = "pd_no_healthy_leader"
    description = "PD has a leader, and it is healthy"
    grace_s = 1.0

    def condition(self, snap: ObsSnapshot) -> str | None:
        """What is wrong with PD's leadership (members were read, yet none leads or the leader is unhealthy)."""
        members = _members(snap)
        if not members:
            return None
        leader = next((m for m in members if m.leader), None)
        if leader is None:
            return "no PD member is the leader"
        return f"the leader {leader.name} is unhealthy" if leader.healthy is False else None

    def violation(self, run: list[tuple[ObsSnapshot, str]], seconds: float) -> Violation:
        members = _members(run[-1][0])
        evidence = {"reason": run[-1][1], "members": [m.name for m in members],
                    "healthy": [m.name for m in members if m.healthy], "since": iso(run[0][0].observed_at),
                    "for_s": round(seconds, 3)}
        return Violation(self.name, "pd", f"PD: {run[-1][1]}", evidence)


class PDMemberDown(EntityCondition[PDMember]):
    name = "pd_member_down"
    description = "every PD member reports healthy"
    grace_s = 1.0

    def entities(self, newest: ObsSnapshot) -> list[str]:
        return [m.name for m in _members(newest)]

    def condition(self, snap: ObsSnapshot, name: str) -> PDMember | None:
        found = next((m for m in _members(snap) if m.name == name), None)
        return found if found is not None and found.healthy is False and not found.leader else None

    def violation(self, name: str, run: list[tuple[ObsSnapshot, PDMember]], seconds: float) -> Violation:
        newest, member = run[-1]
        evidence = {"member": member.name, "client_urls": member.client_urls,
                    "leader": snapshot_details(newest).pd_leader, "since": iso(run[0][0].observed_at),
                    "down_for_s": round(seconds, 3)}
        return Violation(self.name, member.name, f"PD member {member.name} is unhealthy", evidence)


class KVErrorRate(ErrorRateInvariant):
    name = "kv_error_rate"
    description = "clients' KV operations succeed (under 10% failing)"
    grace_s = 1.0
    threshold = 0.10
    min_sent = 20
    min_sent_per_interval = True
    entity = "kv"
    counted = "KV operations"
    operations_key = "operations"
    nodes_key = "stores"


class AcknowledgedWriteLost(WorkloadInvariant):
    name = "acknowledged_write_lost"
    description = "every write the cluster acknowledged reads back as written"
    grace_s = 0.0

    def judge(self, stats: list[WorkloadStats], history: Sequence[ObsSnapshot]) -> list[Violation]:
        details = workload_details(stats[-1])
        if details.lost_total <= 0:
            return []
        evidence = {"lost": details.lost_total, "keys": details.lost_keys[:10], "acked": details.acked_total,
                    "verified": details.verified_total}
        summary = (f"{details.lost_total} acknowledged write(s) read back missing or different "
                   f"(of {details.verified_total} verified)")
        return [Violation(self.name, "kv", summary, evidence)]


INVARIANT_TYPES: tuple[type[Invariant], ...] = (
    StoreNotUp, RegionsUnderReplicated, PDNoHealthyLeader, PDMemberDown, KVErrorRate, AcknowledgedWriteLost,
    ObserverBlind)

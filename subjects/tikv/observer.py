"""TiKV's observer (the monitor's role): PD's view of the cluster, checked against each store's status port.

Each observation asks PD (concurrently) for its stores (tombstones included), members
and their health, its regions and its ``miss-peer`` / ``down-peer`` / ``pending-peer``
checks, and probes every store's status port directly, so a killed store is seen at
the next observation rather than after PD's 20 s disconnect threshold. It is bounded
by ``observe_timeout_s`` and never raises. PD not answering for its stores or members
is a failed observation (``ok=False``: ``observer_blind``, never health); a region check
that fails leaves the region health unobserved and says why.

Nodes are the stores (Tombstones are in the details only): ``up`` when PD reads them
``Up`` and the status port answers; ``degraded`` when ``Offline`` (being removed); else
``down``. The state is PD's own ``state_name``. Components are PD's members: ``up`` when
healthy, ``down`` when not, state ``leader`` or ``follower``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from events import ComponentView, NodeView, ObsSnapshot, Status
from subjects.contract import Invariant, Observer, observe_within
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.details import PDMember, RegionHealth, SnapshotDetails, StoreFacts
from subjects.tikv.invariants import INVARIANT_TYPES
from subjects.tikv.pd import PDUnavailable, StoreInfo, parse_size
from subjects.tikv.settings import SUBJECT_NAME, TiKVSettings


class TiKVObserver(Observer):
    def __init__(self, settings: TiKVSettings | None = None, *, cluster: TiKVCluster | None = None) -> None:
        self.cluster = cluster if cluster is not None else TiKVCluster(settings)
        self._invariants = [cls() for cls in INVARIANT_TYPES]

    def invariants(self) -> list[Invariant]:
        return list(self._invariants)

    async def close(self) -> None:
        await self.cluster.close()

    async def observe(self) -> ObsSnapshot:
        observed_at = datetime.now(UTC)
        start = time.perf_counter()
        return await observe_within(self._observe(observed_at, start), self.cluster.settings.observe_timeout_s,
                                    lambda error: _failed(observed_at, start, error))

    async def _observe(self, observed_at: datetime, start: float) -> ObsSnapshot:
        cluster, pd = self.cluster, self.cluster.pd
        stores_task = asyncio.ensure_future(cluster.stores(include_tombstones=True))
        members_task = asyncio.ensure_future(pd.members())
        health_task = asyncio.ensure_future(pd.health())
        regions_task = asyncio.ensure_future(self._regions())
        try:
            stores = await stores_task
            members = await members_task
        except PDUnavailable as exc:
            for task in (stores_task, members_task, health_task, regions_task):
                task.cancel()
            return _failed(observed_at, start, str(exc))
        live = {name: s for name, s in stores.items() if s.store.state_name != "Tombstone"}
        probes = await asyncio.gather(*(cluster.probe(s.store.status_address) for s in live.values()))
        try:
            health = {h.name: h.health for h in await health_task}
            pd_error = None
        except PDUnavailable as exc:
            health, pd_error = {}, str(exc)
        regions, regions_error = await regions_task
        leader = members.leader.name if members.leader is not None else None
        cluster.known_members = [m.name for m in members.members]
        pd_members = [PDMember(name=m.name, member_id=m.member_id, healthy=health.get(m.name),
                               leader=m.name == leader, client_urls=m.client_urls) for m in members.members]
        facts = {name: _facts(s, p.ok, None if p.ok else p.detail) for (name, s), p in
                 zip(live.items(), probes, strict=True)}
        details = SnapshotDetails(stores=facts, regions=regions, regions_error=regions_error, pd=pd_members,
                                  pd_error=pd_error,
                                  tombstones=[s.store.id for s in stores.values() if s.store.state_name == "Tombstone"])
        return ObsSnapshot(
            subject=SUBJECT_NAME, ok=True, observed_at=observed_at, duration_ms=_ms(start),
            nodes=[_node(name, facts[name], live[name]) for name in live],
            components=[_member(m) for m in pd_members],
            details=details.model_dump(mode="json"),
        )

    async def _regions(self) -> tuple[RegionHealth | None, str | None]:
        pd = self.cluster.pd
        try:
            all_regions, miss, down, pending = await asyncio.gather(
                pd.regions(), pd.region_check("miss-peer"), pd.region_check("down-peer"),
                pd.region_check("pending-peer"))
        except PDUnavailable as exc:
            return None, str(exc)
        return RegionHealth(total=all_regions.count, miss_peer=miss.count, down_peer=down.count,
                            pending_peer=pending.count,
                            leaderless=sum(r.leader is None for r in all_regions.regions)), None


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _failed(observed_at: datetime, start: float, error: str) -> ObsSnapshot:
    return ObsSnapshot(subject=SUBJECT_NAME, ok=False, error=error, observed_at=observed_at, duration_ms=_ms(start))


def _facts(info: StoreInfo, probe_ok: bool, probe_error: str | None) -> StoreFacts:
    s, st = info.store, info.status
    return StoreFacts(id=s.id, address=s.address, status_address=s.status_address, pd_state=s.state_name,
                      probe_ok=probe_ok, probe_error=probe_error, leader_count=st.leader_count,
                      region_count=st.region_count, capacity_bytes=parse_size(st.capacity),
                      available_bytes=parse_size(st.available), last_heartbeat=st.last_heartbeat_ts,
                      uptime=st.uptime, version=s.version)


def _node(name: str, facts: StoreFacts, info: StoreInfo) -> NodeView:
    state = facts.pd_state
    status: Status
    if state == "Up" and facts.probe_ok:
        status, detail = "up", f"{facts.leader_count} leaders, {facts.region_count} regions"
    elif state == "Offline":
        status, detail = "degraded", "PD is removing it (Offline)"
    else:
        status = "down"
        problems = [] if state == "Up" else [f"PD reads it {state}"]
        if not facts.probe_ok:
            problems.append(f"status port {facts.probe_error}")
        detail = "; ".join(problems)
    return NodeView(node=name, status=status, state=state, address=facts.address,
                    last_seen=facts.last_heartbeat, detail=detail)


def _member(member: PDMember) -> ComponentView:
    status: Status = "unknown" if member.healthy is None else ("up" if member.healthy else "down")
    url = member.client_urls[0] if member.client_urls else ""
    return ComponentView(name=member.name, role="placement driver", status=status,
                         state="leader" if member.leader else "follower", address=url,
                         detail="" if member.healthy else "PD reports it unhealthy" if member.healthy is False else "")

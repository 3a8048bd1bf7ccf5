"""The agent's typed tools for TiKV.

Read-only: ``list_stores``, ``store_detail``, ``region_health``, ``pd_members``,
``recent_client_errors``. Mutating: ``start_store``, ``unpause_store``,
``reconnect_store``, ``set_store_up`` (cancel an offline), ``start_pd_member``,
``transfer_pd_leader``, ``remove_tombstones``. Each takes a pydantic argument model
(``extra="forbid"``); none runs a shell. Stores and members outside the cluster are
refused before anything is done; a failure to act is a SubjectError with the reason.

What a mutating call acts on (``acts_on``: the argument its ``target_arg`` declares), in the fault
kit's target names: the store tools the store's name, ``start_pd_member`` the member's name
(``pd_leader_kill`` targets the leader by its member name). ``transfer_pd_leader`` (it moves
leadership *to* a member; what it acts on is PD as a whole, which no fault targets) and
``remove_tombstones`` name nothing: unknown, never judged unsafe.
"""

from __future__ import annotations

import abc
import asyncio
import time
from typing import Any, ClassVar, Literal

import tikv
from pydantic import BaseModel, Field

from subjects.contract import Arguments, SubjectError, Tool
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.pd import PDUnavailable, StoreInfo, parse_size


class StoreArgs(Arguments):
    store: str = Field(description="a store's name, as list_stores shows it (e.g. tikv2)")


class MemberArgs(Arguments):
    member: str = Field(description="a PD member's name, as pd_members shows it (e.g. pd1)")


class TiKVTool(Tool):
    def __init__(self, cluster: TiKVCluster) -> None:
        self.cluster = cluster

    async def _process(self, name: str) -> str:
        try:
            return await self.cluster.control.state(name)
        except SubjectError as exc:
            return f"unknown ({exc})"

    async def describe_store(self, name: str, info: StoreInfo) -> dict[str, Any]:
        probe, process = await asyncio.gather(self.cluster.probe(info.store.status_address), self._process(name))
        status = info.status
        return {
            "store": name, "id": info.store.id, "address": info.store.address, "pd_state": info.store.state_name,
            "status_port": "ok" if probe.ok else probe.detail, "process": process,
            "leader_count": status.leader_count, "region_count": status.region_count,
            "pending_peers": status.pending_peer_count, "last_heartbeat": status.last_heartbeat_ts,
            "uptime": status.uptime, "capacity_bytes": parse_size(status.capacity),
            "available_bytes": parse_size(status.available), "version": info.store.version,
        }


async def _pd(what: str, call: Any) -> Any:
    try:
        return await call
    except PDUnavailable as exc:
        raise SubjectError(f"{what}: {exc}") from exc


class StoreTool(TiKVTool):
    """A tool on one store, named in its arguments: a store PD does not list is refused before
    :meth:`on_store` runs. A mutating one acts on the store (the name the ``store_*`` faults target)."""

    args_model = StoreArgs
    target_arg = "store"

    async def run(self, args: BaseModel) -> Any:
        assert isinstance(args, StoreArgs)
        name, info = await _pd(self.name, self.cluster.require_store(args.store))
        return await self.on_store(name, info)

    @abc.abstractmethod
    async def on_store(self, name: str, info: StoreInfo) -> dict[str, Any]:
        """Act on the store ``name`` (PD's ``info`` of it, as resolved); the call's result."""


class MemberTool(TiKVTool):
    """A mutating tool on one PD member, named in its arguments: a name that is no member of the cluster
    is refused before :meth:`on_member` runs."""

    args_model = MemberArgs
    mutating = True

    async def run(self, args: BaseModel) -> Any:
        assert isinstance(args, MemberArgs)
        return await self.on_member(await _pd(self.name, self.cluster.require_member(args.member)))

    @abc.abstractmethod
    async def on_member(self, name: str) -> dict[str, Any]:
        """Act on the member ``name``; the call's result."""


class ListStores(TiKVTool):
    name = "list_stores"
    description = ("Every TiKV store: PD's state for it (Up, Disconnected, Down, Offline, Tombstone), whether its "
                   "status port answers, its process state (running, paused, exited, disconnected), its leader and "
                   "region counts and last heartbeat.")

    async def run(self, args: BaseModel) -> Any:
        stores = await _pd("list_stores", self.cluster.stores(include_tombstones=True))
        rows = await asyncio.gather(*(self.describe_store(n, s) for n, s in stores.items()))
        return {"stores": rows}


class StoreDetail(StoreTool):
    name = "store_detail"
    description = "One TiKV store in detail: PD's view of it, its status port, its process state, capacity."

    async def on_store(self, name: str, info: StoreInfo) -> dict[str, Any]:
        return await self.describe_store(name, info)


class RegionHealthTool(TiKVTool):
    name = "region_health"
    description = ("Region health from PD: how many regions miss a peer, have a down peer or a pending peer, which "
                   "stores those peers are on, and regions without a leader.")

    async def run(self, args: BaseModel) -> Any:
        pd = self.cluster.pd
        stores = await _pd("region_health", self.cluster.stores(include_tombstones=True))
        by_id = {s.store.id: name for name, s in stores.items()}
        regions, miss, down, pending = await _pd("region_health", asyncio.gather(
            pd.regions(), pd.region_check("miss-peer"), pd.region_check("down-peer"), pd.region_check("pending-peer")))

        def brief(r: Any) -> dict[str, Any]:
            return {"id": r.id, "peers_on": [by_id.get(p.store_id, p.store_id) for p in r.peers],
                    "leader_on": by_id.get(r.leader.store_id) if r.leader else None}

        return {"regions": regions.count, "leaderless": [r.id for r in regions.regions if r.leader is None],
                "miss_peer": {"count": miss.count, "regions": [brief(r) for r in miss.regions[:20]]},
                "down_peer": {"count": down.count, "regions": [brief(r) for r in down.regions[:20]]},
                "pending_peer": {"count": pending.count, "regions": [brief(r) for r in pending.regions[:20]]}}


class PDMembers(TiKVTool):
    name = "pd_members"
    description = "PD's members: which leads, which report healthy, and each one's process state."

    async def run(self, args: BaseModel) -> Any:
        members = await _pd("pd_members", self.cluster.pd.members())
        try:
            health = {h.name: h.health for h in await self.cluster.pd.health()}
        except PDUnavailable as exc:
            health = {"error": str(exc)}  # type: ignore[dict-item]
        leader = members.leader.name if members.leader else None
        processes = await asyncio.gather(*(self._process(m.name) for m in members.members))
        return {"leader": leader, "members": [
            {"name": m.name, "leader": m.name == leader, "healthy": health.get(m.name), "process": process,
             "client_urls": m.client_urls} for m, process in zip(members.members, processes, strict=True)]}


class RecentClientErrors(TiKVTool):
    name = "recent_client_errors"
    description = ("Run 10 writes and reads of the lab's own probe keys now, through a real KV client, and report "
                   "which failed and why, and how long they took. Changes nothing but those probe keys.")

    async def run(self, args: BaseModel) -> Any:
        settings = self.cluster.settings
        results: dict[str, list[str]] = {"put": [], "get": []}
        latencies: list[float] = []
        try:
            client = tikv.AsyncRawClient(settings.endpoints, timeout=settings.kv_timeout_s)
        except ValueError as exc:
            raise SubjectError(f"recent_client_errors: {exc}") from exc
        try:
            for i in range(10):
                key = f"oplab-agent-probe/{i}".encode()
                for op in ("put", "get"):
                    start = time.perf_counter()
                    try:
                        if op == "put":
                            await client.put(key, str(time.time()).encode())
                        else:
                            await client.get(key)
                        results[op].append("ok")
                    except tikv.TiKVError as exc:
                        results[op].append(f"{type(exc).__name__}: {str(exc)[:160]}")
                    latencies.append((time.perf_counter() - start) * 1000)
        finally:
            await client.close()
        errors = {op: [r for r in rs if r != "ok"] for op, rs in results.items()}
        return {"ops": 20, "errors": {op: len(e) for op, e in errors.items()},
                "error_samples": sorted({e for es in errors.values() for e in es})[:5],
                "p50_ms": round(sorted(latencies)[len(latencies) // 2], 1), "max_ms": round(max(latencies), 1)}


class _StoreProcessRemedy(StoreTool):
    """A remedy on a store's process, one verb of the cluster's process control (``verb``), then a wait
    until PD reads the store Up and its status port answers: the result says what was done and how the
    store reads now."""

    mutating = True
    verb: ClassVar[Literal["start", "unpause", "reconnect"]]

    async def on_store(self, name: str, info: StoreInfo) -> dict[str, Any]:
        action = await self.cluster.control.act(self.verb, name)
        return {"store": name, "action": action,
                "now": await self.cluster.wait_store_up(name, self.cluster.settings.start_deadline_s)}


class StartStore(_StoreProcessRemedy):
    name = "start_store"
    description = ("Start a store's process if it is not running (harmless if it runs), then wait until PD reads it "
                   "Up and its status port answers. Mutating.")
    verb = "start"


class UnpauseStore(_StoreProcessRemedy):
    name = "unpause_store"
    description = "Resume a store whose process is paused (frozen), then wait until it is Up. Mutating."
    verb = "unpause"


class ReconnectStore(_StoreProcessRemedy):
    name = "reconnect_store"
    description = ("Reconnect a store that is running but cut off from the cluster's network, then wait until it is "
                   "Up. Mutating.")
    verb = "reconnect"


class SetStoreUp(StoreTool):
    name = "set_store_up"
    description = "Set a store PD is removing (Offline) back to Up: cancels an offline that was not meant. Mutating."
    mutating = True

    async def on_store(self, name: str, info: StoreInfo) -> dict[str, Any]:
        answer = await _pd("set_store_up", self.cluster.pd.set_store_state(info.store.id, "Up"))
        return {"store": name, "previous_state": info.store.state_name, "pd": answer}


class StartPDMember(MemberTool):
    name = "start_pd_member"
    description = "Start a PD member's process if it is not running (harmless if it runs). Mutating."
    target_arg = "member"

    async def on_member(self, name: str) -> dict[str, Any]:
        return {"member": name, "action": await self.cluster.control.start(name)}


class TransferPDLeader(MemberTool):
    name = "transfer_pd_leader"
    description = "Ask PD to move its leadership to another (healthy) member. Mutating."

    async def on_member(self, name: str) -> dict[str, Any]:
        return {"member": name, "pd": await _pd("transfer_pd_leader", self.cluster.pd.transfer_leader(name))}


class RemoveTombstones(TiKVTool):
    name = "remove_tombstones"
    description = "Remove the records of stores that were removed from the cluster (Tombstone) from PD. Mutating."
    mutating = True

    async def run(self, args: BaseModel) -> Any:
        before = await _pd("remove_tombstones", self.cluster.stores(include_tombstones=True))
        gone = [n for n, s in before.items() if s.store.state_name == "Tombstone"]
        return {"removed": gone, "pd": await _pd("remove_tombstones", self.cluster.pd.remove_tombstones())}


TOOL_TYPES: tuple[type[TiKVTool], ...] = (
    ListStores, StoreDetail, RegionHealthTool, PDMembers, RecentClientErrors, StartStore, UnpauseStore,
    ReconnectStore, SetStoreUp, StartPDMember, TransferPDLeader, RemoveTombstones)

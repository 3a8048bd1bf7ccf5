"""The PD double's cluster model: stores, regions and the rules PD applies to them (on a scaled clock).

What the rules are is the :mod:`tests.fakes.tikv.pd` docstring's "Store states" and "Regions"; this
module applies them, and nothing here speaks HTTP or gRPC (:mod:`tests.fakes.tikv.pd_http`,
:mod:`tests.fakes.tikv.pd_grpc` render it as PD's answers). Times are ``time.monotonic()`` except the
wall-clock start of a store's process (``Store.start``), which PD reports.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

CLUSTER_ID = 7364812906130012345
MEMBER_ID = 11842287834765011
VERSION = "8.5.2"  # what the double says it is; the lab pins pingcap images at this version
REPLICAS = 3


@dataclass
class Store:
    id: int
    address: str
    status_address: str
    start: float
    last_heartbeat: float
    state: str = "Up"  # metapb state: Up, Offline, Tombstone

    def silent_s(self, now: float) -> float:
        return now - self.last_heartbeat


@dataclass
class Region:
    id: int
    start: bytes
    end: bytes
    peers: dict[int, int]  # store id -> peer id
    leader: int | None
    conf_ver: int = 1
    version: int = 1
    pending: dict[int, float] = field(default_factory=dict)  # store id -> pending until (monotonic)


class PDState:
    """Stores and regions, with PD's rules applied on every read (``tick``: the HTTP and gRPC layers call it
    before they answer)."""

    def __init__(self, splits: list[bytes], disconnect_after_s: float, max_store_down_time_s: float,
                 election_s: float, catch_up_s: float, http_url: str, grpc_url: str) -> None:
        self.disconnect_after_s = disconnect_after_s
        self.max_store_down_time_s = max_store_down_time_s
        self.election_s = election_s
        self.catch_up_s = catch_up_s
        self.http_url, self.grpc_url = http_url, grpc_url
        self.stores: dict[int, Store] = {}
        self._ids = itertools.count(1000)
        bounds = [b"", *splits, b""]
        self.regions = [Region(next(self._ids), bounds[i], bounds[i + 1], {}, None) for i in range(len(bounds) - 1)]
        self.started = time.time()

    # -- PD's rules ---------------------------------------------------------------------

    def state_name(self, store: Store, now: float) -> str:
        """PD's ``state_name``: an Offline or Tombstone store as set; an Up one by how long it is silent."""
        if store.state != "Up":
            return store.state
        silent = store.silent_s(now)
        if silent > self.max_store_down_time_s:
            return "Down"
        if silent > self.disconnect_after_s:
            return "Disconnected"
        return "Up"

    def alive(self, store_id: int, now: float) -> bool:
        """Whether the store could lead: it exists, is no tombstone, and heartbeated within ``election_s``."""
        store = self.stores.get(store_id)
        return store is not None and store.state != "Tombstone" and store.silent_s(now) <= self.election_s

    def tick(self) -> None:
        """Apply the rules: remove peers of Down stores, re-add returning ones, elect leaders."""
        now = time.monotonic()
        for region in self.regions:
            for store in self.stores.values():
                name = self.state_name(store, now)
                if name in ("Down", "Tombstone") and store.id in region.peers:
                    del region.peers[store.id]
                    region.pending.pop(store.id, None)
                    region.conf_ver += 1
                elif name == "Up" and store.id not in region.peers and len(region.peers) < REPLICAS:
                    region.peers[store.id] = next(self._ids)
                    region.pending[store.id] = now + self.catch_up_s
                    region.conf_ver += 1
            for store_id, until in list(region.pending.items()):
                if until <= now:
                    del region.pending[store_id]
            if region.leader is None or region.leader not in region.peers or not self.alive(region.leader, now):
                live = sorted(s for s in region.peers if self.alive(s, now) and s not in region.pending)
                new = live[0] if live else None
                if new != region.leader:
                    region.leader = new
                    region.version += 1 if new is None else 0

    def heartbeat(self, store_id: int, address: str, status_address: str) -> dict[str, Any]:
        """A store's heartbeat (registering it on its first): every region as the store needs it, or
        ``{"tombstone": True}`` for a removed store."""
        now = time.monotonic()
        store = self.stores.get(store_id)
        if store is None or store.state == "Tombstone":
            if store is not None:
                return {"tombstone": True}
            store = self.stores[store_id] = Store(store_id, address, status_address, time.time(), now)
        if store.silent_s(now) > self.disconnect_after_s:
            store.start = time.time()  # a new process (or one that was stopped): uptime starts again
        store.address, store.status_address, store.last_heartbeat = address, status_address, now
        self.tick()
        return {"regions": [self.region_doc(r) for r in self.regions]}

    @staticmethod
    def region_doc(region: Region) -> dict[str, Any]:
        """What a store needs to serve a region (the double's own heartbeat answer)."""
        return {"id": region.id, "start": region.start.hex(), "end": region.end.hex(), "leader": region.leader,
                "peers": region.peers, "conf_ver": region.conf_ver, "version": region.version}

    # -- queries ----------------------------------------------------------------------------

    def check(self, kind: str) -> list[Region]:
        """The regions PD's ``/regions/check/{kind}`` lists: ``miss-peer``, ``down-peer``, else ``pending-peer``."""
        now = time.monotonic()
        if kind == "miss-peer":
            return [r for r in self.regions if len(r.peers) < REPLICAS]
        if kind == "down-peer":
            return [r for r in self.regions
                    if any(self.state_name(self.stores[s], now) == "Disconnected" for s in r.peers)]
        return [r for r in self.regions if r.pending]

    def member(self) -> dict[str, Any]:
        """The one PD member (the double): its name, id and URLs."""
        return {"name": "pd-double", "member_id": MEMBER_ID, "peer_urls": [self.http_url],
                "client_urls": [self.grpc_url]}

    def find_region(self, key: bytes) -> Region | None:
        """The region whose range holds ``key`` (an empty end is the end of the key space)."""
        return next((r for r in self.regions if r.start <= key and (not r.end or key < r.end)), None)

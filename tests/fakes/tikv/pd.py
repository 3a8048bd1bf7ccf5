"""A PD double: the slice of TiKV's Placement Driver the lab talks to, as a real server on 127.0.0.1.

**It is a double, not PD.** It has no Raft, no etcd, no scheduling beyond the few
rules below, one member, and it keeps its state in memory. What it covers:

- PD's HTTP API (``/pd/api/v1``) with the JSON shapes of tikv/pd's own
  ``pkg/response/store.go`` (``StoresInfo``/``StoreInfo``/``MetaStore``/``StoreStatus``:
  byte sizes and durations as strings, timestamps as RFC 3339), ``region.go``
  (``RegionsInfo``/``RegionInfo`` with hex keys and peers) and ``server/api``
  (``GET /stores`` without tombstones unless asked, ``GET /store/{id}``,
  ``POST /store/{id}/state?state=Up|Offline``, ``DELETE /stores/remove-tombstone``,
  ``GET /members`` as ``pdpb.GetMembersResponse``, ``GET /health``, ``GET /leader``,
  ``POST /leader/transfer/{name}``, ``GET /regions``,
  ``GET /regions/check/{miss-peer,down-peer,pending-peer}``).
- PD's gRPC methods the raw KV client uses (``pdpb.PD/GetMembers``, ``GetRegion``,
  ``GetPrevRegion``, ``GetStore``, ``ScanRegions``), on a port of their own (real PD
  serves both on 2379; the lab takes the HTTP URL and the gRPC endpoints apart).
- Store states by PD's rules, on a scaled clock: a store that has not
  heartbeated for ``disconnect_after_s`` reads ``Disconnected`` (PD: 20 s), for
  ``max_store_down_time_s`` ``Down`` (PD: ``[schedule] max-store-down-time``, 30 min);
  ``Offline`` and ``Tombstone`` are set through the API and kept.
- Regions: fixed ranges, each with a peer on every store. A region whose leader's
  store is silent for ``election_s`` elects a new leader among its live peers (the
  lowest store id); a peer on a ``Disconnected`` store is a *down peer*; when a store
  goes ``Down`` its peers are removed (the region then *misses a peer*: three stores
  and three replicas leave nowhere to rebuild it), and when it comes back they are
  re-added as *pending* for ``catch_up_s``.

Stores heartbeat it over a double-only endpoint, ``POST /double/heartbeat`` (real
stores heartbeat over gRPC ``StoreHeartbeat``/``RegionHeartbeat``), and learn which
regions they lead from its answer. ``python -m tests.fakes.tikv.pd --http-port H
--grpc-port G [--splits k1,k2] [--disconnect-after-s S] [--max-store-down-time-s S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from aiohttp import web
from tikv._proto import metapb_pb2 as metapb
from tikv._proto import pdpb_pb2 as pdpb

log = logging.getLogger("pd-double")

CLUSTER_ID = 7364812906130012345
MEMBER_ID = 11842287834765011
VERSION = "8.5.2"  # what the double says it is; the lab pins pingcap images at this version
REPLICAS = 3
GIB = 1024**3


def byte_size(n: float) -> str:
    """As PD's typeutil.ByteSize marshals (docker/go-units BytesSize): ``"9.313GiB"``."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.4g}{units[i]}"


def go_duration(seconds: float) -> str:
    """As Go's time.Duration.String(): ``"1h2m3.5s"``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    frac = seconds - whole
    text = f"{secs + frac:.9g}s"
    if minutes or hours:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return text


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


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
    """Stores and regions, with PD's rules applied on every read (see the module docstring)."""

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
        if store.state != "Up":
            return store.state
        silent = store.silent_s(now)
        if silent > self.max_store_down_time_s:
            return "Down"
        if silent > self.disconnect_after_s:
            return "Disconnected"
        return "Up"

    def alive(self, store_id: int, now: float) -> bool:
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

    # -- shapes ---------------------------------------------------------------------------

    @staticmethod
    def region_doc(region: Region) -> dict[str, Any]:
        """What a store needs to serve a region (the double's own heartbeat answer)."""
        return {"id": region.id, "start": region.start.hex(), "end": region.end.hex(), "leader": region.leader,
                "peers": region.peers, "conf_ver": region.conf_ver, "version": region.version}

    def store_info(self, store: Store, now: float) -> dict[str, Any]:
        leaders = sum(r.leader == store.id for r in self.regions)
        regions = sum(store.id in r.peers for r in self.regions)
        pending = sum(store.id in r.pending for r in self.regions)
        wall = time.time() - store.silent_s(now)
        meta: dict[str, Any] = {"id": store.id, "address": store.address, "version": VERSION,
                                "peer_address": store.address, "status_address": store.status_address,
                                "git_hash": "double", "start_timestamp": int(store.start),
                                "deploy_path": "/", "last_heartbeat": int(wall * 1e9),
                                "state_name": self.state_name(store, now)}
        if store.state != "Up":
            meta["state"] = {"Offline": 1, "Tombstone": 2}[store.state]
        status: dict[str, Any] = {
            "capacity": byte_size(100 * GIB), "available": byte_size(90 * GIB), "used_size": byte_size(GIB),
            "leader_count": leaders, "leader_weight": 1, "leader_score": leaders, "leader_size": leaders,
            "region_count": regions, "region_weight": 1, "region_score": regions, "region_size": regions,
            "start_ts": rfc3339(store.start), "last_heartbeat_ts": rfc3339(wall),
            "uptime": go_duration(max(0.0, wall - store.start)),
        }
        if pending:
            status["pending_peer_count"] = pending
        return {"store": meta, "status": status}

    def region_info(self, region: Region, now: float) -> dict[str, Any]:
        peers = [{"id": pid, "store_id": sid, "role_name": "Voter"} for sid, pid in sorted(region.peers.items())]
        doc: dict[str, Any] = {
            "id": region.id, "start_key": region.start.hex().upper(), "end_key": region.end.hex().upper(),
            "epoch": {"conf_ver": region.conf_ver, "version": region.version}, "peers": peers,
            "cpu_usage": 0, "written_bytes": 0, "read_bytes": 0, "written_keys": 0, "read_keys": 0,
            "approximate_size": 1, "approximate_keys": 0, "approximate_kv_size": 0,
            "approximate_columnar_kv_size": 0,
        }
        if region.leader is not None:
            doc["leader"] = next(p for p in peers if p["store_id"] == region.leader)
        down = [{"peer": p, "down_seconds": int(self.stores[p["store_id"]].silent_s(now))} for p in peers
                if self.state_name(self.stores[p["store_id"]], now) == "Disconnected"]
        if down:
            doc["down_peers"] = down
        pending = [p for p in peers if p["store_id"] in region.pending]
        if pending:
            doc["pending_peers"] = pending
        return doc

    def check(self, kind: str) -> list[Region]:
        now = time.monotonic()
        if kind == "miss-peer":
            return [r for r in self.regions if len(r.peers) < REPLICAS]
        if kind == "down-peer":
            return [r for r in self.regions
                    if any(self.state_name(self.stores[s], now) == "Disconnected" for s in r.peers)]
        return [r for r in self.regions if r.pending]

    def member(self) -> dict[str, Any]:
        return {"name": "pd-double", "member_id": MEMBER_ID, "peer_urls": [self.http_url],
                "client_urls": [self.grpc_url]}

    def find_region(self, key: bytes) -> Region | None:
        return next((r for r in self.regions if r.start <= key and (not r.end or key < r.end)), None)


# -- HTTP API ---------------------------------------------------------------------------------


def http_app(state: PDState) -> web.Application:
    routes = web.RouteTableDef()

    def fresh() -> float:
        state.tick()
        return time.monotonic()

    @routes.get("/pd/api/v1/stores")
    async def stores(request: web.Request) -> web.Response:
        now = fresh()
        wanted = request.query.getall("state", [])
        names = {"0": "Up", "1": "Offline", "2": "Tombstone"}
        keep = {names.get(w, w) for w in wanted} if wanted else {"Up", "Offline"}
        docs = [state.store_info(s, now) for s in sorted(state.stores.values(), key=lambda s: s.id)
                if s.state in keep]
        return web.json_response({"count": len(docs), "stores": docs})

    @routes.get("/pd/api/v1/store/{id}")
    async def store(request: web.Request) -> web.Response:
        now = fresh()
        found = state.stores.get(int(request.match_info["id"]))
        if found is None:
            return web.json_response(f"[PD:core:ErrStoreNotFound]store id {request.match_info['id']} not found",
                                     status=404)
        return web.json_response(state.store_info(found, now))

    @routes.post("/pd/api/v1/store/{id}/state")
    async def set_state(request: web.Request) -> web.Response:
        store_id = int(request.match_info["id"])
        found = state.stores.get(store_id)
        if found is None:
            return web.json_response(f"[PD:core:ErrStoreNotFound]store id {store_id} not found", status=404)
        if found.state == "Tombstone":
            return web.json_response(f"[PD:core:ErrStoreRemoved]store {store_id} has been removed", status=410)
        wanted = request.query.get("state", "")
        if wanted.lower() == "up":
            found.state = "Up"
        elif wanted.lower() == "offline":
            found.state = "Offline"
        else:
            return web.json_response(f"invalid state {wanted}", status=400)
        return web.json_response("The store's state is updated.")

    @routes.delete("/pd/api/v1/stores/remove-tombstone")
    async def remove_tombstone(request: web.Request) -> web.Response:
        for store_id in [s.id for s in state.stores.values() if s.state == "Tombstone"]:
            del state.stores[store_id]
        return web.json_response("Remove tombstone successfully.")

    @routes.get("/pd/api/v1/members")
    async def members(request: web.Request) -> web.Response:
        me = state.member()
        return web.json_response({"header": {"cluster_id": CLUSTER_ID}, "members": [me], "leader": me,
                                  "etcd_leader": me})

    @routes.get("/pd/api/v1/health")
    async def health(request: web.Request) -> web.Response:
        me = state.member()
        return web.json_response([{"name": me["name"], "member_id": me["member_id"],
                                   "client_urls": me["client_urls"], "health": True}])

    @routes.get("/pd/api/v1/leader")
    async def leader(request: web.Request) -> web.Response:
        return web.json_response(state.member())

    @routes.post("/pd/api/v1/leader/transfer/{name}")
    async def transfer(request: web.Request) -> web.Response:
        if request.match_info["name"] == state.member()["name"]:
            return web.json_response("The transfer command is submitted.")
        return web.json_response(f"not found, pd: {request.match_info['name']}", status=500)

    @routes.get("/pd/api/v1/regions")
    async def regions(request: web.Request) -> web.Response:
        now = fresh()
        docs = [state.region_info(r, now) for r in state.regions]
        return web.json_response({"count": len(docs), "regions": docs})

    @routes.get("/pd/api/v1/regions/check/{kind}")
    async def check(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in ("miss-peer", "down-peer", "pending-peer"):
            return web.json_response(f"unknown check {kind}", status=404)
        now = fresh()
        docs = [state.region_info(r, now) for r in state.check(kind)]
        return web.json_response({"count": len(docs), "regions": docs})

    @routes.post("/double/heartbeat")
    async def heartbeat(request: web.Request) -> web.Response:
        doc = await request.json()
        return web.json_response(state.heartbeat(int(doc["store_id"]), str(doc["address"]),
                                                 str(doc["status_address"])))

    @routes.get("/double/stores")
    async def live_stores(request: web.Request) -> web.Response:
        now = fresh()
        return web.json_response([{"id": s.id, "status_address": s.status_address,
                                   "alive": state.alive(s.id, now)} for s in state.stores.values()])

    app = web.Application()
    app.add_routes(routes)
    return app


# -- gRPC -------------------------------------------------------------------------------------


def _header() -> pdpb.ResponseHeader:
    return pdpb.ResponseHeader(cluster_id=CLUSTER_ID)


def _region_meta(region: Region) -> tuple[metapb.Region, metapb.Peer | None]:
    peers = [metapb.Peer(id=pid, store_id=sid) for sid, pid in sorted(region.peers.items())]
    meta = metapb.Region(id=region.id, start_key=region.start, end_key=region.end, peers=peers,
                         region_epoch=metapb.RegionEpoch(conf_ver=region.conf_ver, version=region.version))
    leader = next((p for p in peers if p.store_id == region.leader), None)
    return meta, leader


def grpc_handlers(state: PDState) -> grpc.GenericRpcHandler:
    async def get_members(request: pdpb.GetMembersRequest, context: Any) -> pdpb.GetMembersResponse:
        me = state.member()
        member = pdpb.Member(name=me["name"], member_id=MEMBER_ID, peer_urls=me["peer_urls"],
                             client_urls=me["client_urls"])
        return pdpb.GetMembersResponse(header=_header(), members=[member], leader=member)

    async def get_region(request: pdpb.GetRegionRequest, context: Any) -> pdpb.GetRegionResponse:
        state.tick()
        region = state.find_region(request.region_key)
        if region is None:
            return pdpb.GetRegionResponse(header=_header())
        meta, leader = _region_meta(region)
        return pdpb.GetRegionResponse(header=_header(), region=meta, leader=leader)

    async def get_prev_region(request: pdpb.GetRegionRequest, context: Any) -> pdpb.GetRegionResponse:
        state.tick()
        before = [r for r in state.regions if r.end and r.end <= request.region_key]
        if not before:
            return pdpb.GetRegionResponse(header=_header())
        meta, leader = _region_meta(before[-1])
        return pdpb.GetRegionResponse(header=_header(), region=meta, leader=leader)

    async def get_store(request: pdpb.GetStoreRequest, context: Any) -> pdpb.GetStoreResponse:
        store = state.stores.get(request.store_id)
        if store is None:
            error = pdpb.Error(type=pdpb.STORE_TOMBSTONE, message=f"invalid store ID {request.store_id}")
            return pdpb.GetStoreResponse(header=pdpb.ResponseHeader(cluster_id=CLUSTER_ID, error=error))
        meta = metapb.Store(id=store.id, address=store.address, status_address=store.status_address,
                            version=VERSION)
        return pdpb.GetStoreResponse(header=_header(), store=meta)

    async def scan_regions(request: pdpb.ScanRegionsRequest, context: Any) -> pdpb.ScanRegionsResponse:
        state.tick()
        found = [r for r in state.regions if (not r.end or r.end > request.start_key)
                 and (not request.end_key or r.start < request.end_key)][: request.limit or None]
        out = []
        for region in found:
            meta, leader = _region_meta(region)
            out.append(pdpb.Region(region=meta, leader=leader))
        return pdpb.ScanRegionsResponse(header=_header(), regions=out)

    def unary(fn: Any, request_type: Any) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=request_type.FromString,
                                                   response_serializer=lambda m: m.SerializeToString())

    return grpc.method_handlers_generic_handler("pdpb.PD", {
        "GetMembers": unary(get_members, pdpb.GetMembersRequest),
        "GetRegion": unary(get_region, pdpb.GetRegionRequest),
        "GetPrevRegion": unary(get_prev_region, pdpb.GetRegionRequest),
        "GetStore": unary(get_store, pdpb.GetStoreRequest),
        "ScanRegions": unary(scan_regions, pdpb.ScanRegionsRequest),
    })


async def serve(args: argparse.Namespace) -> None:
    splits = [s.encode() for s in args.splits.split(",") if s]
    state = PDState(splits, args.disconnect_after_s, args.max_store_down_time_s, args.election_s, args.catch_up_s,
                    http_url=f"http://{args.advertise_host}:{args.http_port}",
                    grpc_url=f"http://{args.advertise_host}:{args.grpc_port}")
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc_handlers(state),))
    server.add_insecure_port(f"{args.listen}:{args.grpc_port}")
    await server.start()
    runner = web.AppRunner(http_app(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.listen, args.http_port).start()
    log.info("pd double: http %s grpc %s", args.http_port, args.grpc_port)
    try:
        await asyncio.Event().wait()  # until killed
    finally:
        await runner.cleanup()
        await server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--splits", default="0333,0666", help="region boundaries, comma separated")
    parser.add_argument("--disconnect-after-s", type=float, default=1.0)
    parser.add_argument("--max-store-down-time-s", type=float, default=3.0)
    parser.add_argument("--election-s", type=float, default=0.6)
    parser.add_argument("--catch-up-s", type=float, default=0.5)
    parser.add_argument("--listen", default="127.0.0.1", help="the address to bind (0.0.0.0 in a container)")
    parser.add_argument("--advertise-host", default="127.0.0.1", help="the host in PD's member URLs")
    logging.basicConfig(level=logging.INFO)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()

"""The PD double's HTTP API (``/pd/api/v1``), in the JSON shapes of tikv/pd's ``pkg/response``, and the
double's own endpoints for the store doubles (``/double/heartbeat``, ``/double/stores``).

Which routes and shapes are covered is the :mod:`tests.fakes.tikv.pd` docstring; the state they show is
:class:`tests.fakes.tikv.pd_cluster.PDState`, ticked (its rules applied) before every answer that reads it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.tikv.pd_cluster import CLUSTER_ID, VERSION, PDState, Region, Store

GIB = 1024**3


# -- PD's shapes ----------------------------------------------------------------------------


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
    """A Unix time in RFC 3339, UTC written ``Z`` (PD's timestamps): ``"2025-01-02T03:04:05.500000Z"``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def store_info(state: PDState, store: Store, now: float) -> dict[str, Any]:
    """``StoreInfo`` (pkg/response/store.go): the store's meta and status, sizes and durations as PD writes them."""
    leaders = sum(r.leader == store.id for r in state.regions)
    regions = sum(store.id in r.peers for r in state.regions)
    pending = sum(store.id in r.pending for r in state.regions)
    wall = time.time() - store.silent_s(now)
    meta: dict[str, Any] = {"id": store.id, "address": store.address, "version": VERSION,
                            "peer_address": store.address, "status_address": store.status_address,
                            "git_hash": "double", "start_timestamp": int(store.start),
                            "deploy_path": "/", "last_heartbeat": int(wall * 1e9),
                            "state_name": state.state_name(store, now)}
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


def region_info(state: PDState, region: Region, now: float) -> dict[str, Any]:
    """``RegionInfo`` (pkg/response/region.go): hex keys, epoch, peers, leader, down and pending peers."""
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
    down = [{"peer": p, "down_seconds": int(state.stores[p["store_id"]].silent_s(now))} for p in peers
            if state.state_name(state.stores[p["store_id"]], now) == "Disconnected"]
    if down:
        doc["down_peers"] = down
    pending = [p for p in peers if p["store_id"] in region.pending]
    if pending:
        doc["pending_peers"] = pending
    return doc


# -- routes ---------------------------------------------------------------------------------


def http_app(state: PDState) -> web.Application:
    """The routes over ``state``; errors as PD words them (``[PD:core:ErrStoreNotFound]...``) with its codes."""
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
        docs = [store_info(state, s, now) for s in sorted(state.stores.values(), key=lambda s: s.id)
                if s.state in keep]
        return web.json_response({"count": len(docs), "stores": docs})

    @routes.get("/pd/api/v1/store/{id}")
    async def store(request: web.Request) -> web.Response:
        now = fresh()
        found = state.stores.get(int(request.match_info["id"]))
        if found is None:
            return web.json_response(f"[PD:core:ErrStoreNotFound]store id {request.match_info['id']} not found",
                                     status=404)
        return web.json_response(store_info(state, found, now))

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
        docs = [region_info(state, r, now) for r in state.regions]
        return web.json_response({"count": len(docs), "regions": docs})

    @routes.get("/pd/api/v1/regions/check/{kind}")
    async def check(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in ("miss-peer", "down-peer", "pending-peer"):
            return web.json_response(f"unknown check {kind}", status=404)
        now = fresh()
        docs = [region_info(state, r, now) for r in state.check(kind)]
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

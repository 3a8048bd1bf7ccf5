"""A TiKV store double: one process standing in for one TiKV store, for the PD double.

**It is a double, not TiKV.** No Raft log, no RocksDB: a dict in memory. What it covers:

- TiKV's raw KV gRPC methods the lab's client uses (``tikvpb.Tikv/RawGet``, ``RawPut``,
  ``RawBatchGet``, ``RawDelete``), with TiKV's region errors: a request for a region this
  store does not lead is answered ``not_leader`` (with the leader, when it knows it), an
  unknown region ``region_not_found``, a stale epoch ``epoch_not_match``.
- Replication that behaves like a quorum: a put on the leader is applied on the followers
  that answer (``POST /internal/apply`` on their status port) and acknowledged only if a
  majority of the region's peers has it; otherwise the client gets an error.
- A store that was away (restarted, stopped, partitioned: its heartbeats had a gap) catches
  up from a live peer (``GET /internal/snapshot``) before it serves again, as a TiKV
  follower catches up its log before it can lead.
- Its status port (``GET /status``, ``GET /metrics``), as TiKV's (default 20180).
- Heartbeats to the PD double every ``heartbeat_s`` while the process runs: SIGKILL
  ends them, SIGSTOP freezes them (and every answer), as for a real store.
- Signals for the lab's process-level stand-in of the Docker faults: ``SIGUSR1``
  partitions the store (it closes its ports and stops heartbeating, as a container
  disconnected from its network), ``SIGUSR2`` heals it.
- The lost-write double: with ``PUT /admin/drop-acked-writes`` it acknowledges puts it
  never stores (``DELETE`` turns that off), which the lab's prober must notice.

``python -m tests.fakes.tikv.store --id 1 --pd http://127.0.0.1:H --grpc-port G --status-port S``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
from aiohttp import web
from tikv._proto import errorpb_pb2 as errorpb
from tikv._proto import kvrpcpb_pb2 as kvrpcpb
from tikv._proto import metapb_pb2 as metapb

from tests.fakes.tikv.process import double_arguments, run_double

log = logging.getLogger("store-double")


@dataclass
class RegionView:
    id: int
    start: bytes
    end: bytes
    leader: int | None
    peers: dict[int, int]  # store id -> peer id
    conf_ver: int
    version: int

    def contains(self, key: bytes) -> bool:
        return self.start <= key and (not self.end or key < self.end)


class StoreDouble:
    def __init__(self, store_id: int, pd_url: str, grpc_port: int, status_port: int, heartbeat_s: float,
                 listen: str = "127.0.0.1", advertise: str = "127.0.0.1") -> None:
        self.id = store_id
        self.pd_url = pd_url.rstrip("/")
        self.grpc_port, self.status_port, self.listen = grpc_port, status_port, listen
        self.address = f"{advertise}:{grpc_port}"  # what PD tells clients, as TiKV's --advertise-addr
        self.status_address = f"{advertise}:{status_port}"
        self.heartbeat_s = heartbeat_s
        self.data: dict[bytes, bytes] = {}
        self.regions: list[RegionView] = []
        self.drop_acked_writes = False
        self.partitioned = False
        self.started = time.time()
        self._last_beat = 0.0  # monotonic time of the last heartbeat PD answered (0: never)
        self._during_catch_up: dict[bytes, bytes | None] | None = None  # applied while copying a snapshot
        self._http: aiohttp.ClientSession | None = None
        self._grpc: grpc.aio.Server | None = None
        self._site: web.AppRunner | None = None
        self.stats = {"gets": 0, "puts": 0, "not_leader": 0}

    # -- the region table (from the PD double's heartbeat answer) ------------------------------

    def region_for(self, region_id: int) -> RegionView | None:
        return next((r for r in self.regions if r.id == region_id), None)

    def _check(self, ctx: kvrpcpb.Context, key: bytes) -> tuple[RegionView | None, errorpb.Error | None]:
        region = self.region_for(ctx.region_id)
        if region is None:
            return None, errorpb.Error(message=f"region {ctx.region_id} not found",
                                       region_not_found=errorpb.RegionNotFound(region_id=ctx.region_id))
        if not region.contains(key):
            return None, errorpb.Error(message="key not in region", key_not_in_region=errorpb.KeyNotInRegion(
                key=key, region_id=region.id, start_key=region.start, end_key=region.end))
        if region.leader != self.id:
            self.stats["not_leader"] += 1
            hint = None
            if region.leader is not None and region.leader in region.peers:
                hint = metapb.Peer(id=region.peers[region.leader], store_id=region.leader)
            return None, errorpb.Error(message=f"peer is not leader for region {region.id}",
                                       not_leader=errorpb.NotLeader(region_id=region.id, leader=hint))
        epoch = ctx.region_epoch
        if epoch.conf_ver and (epoch.conf_ver, epoch.version) != (region.conf_ver, region.version):
            return None, errorpb.Error(message="epoch not match", epoch_not_match=errorpb.EpochNotMatch())
        return region, None

    # -- gRPC -------------------------------------------------------------------------------

    async def raw_get(self, request: kvrpcpb.RawGetRequest, context: Any) -> kvrpcpb.RawGetResponse:
        _, error = self._check(request.context, request.key)
        if error is not None:
            return kvrpcpb.RawGetResponse(region_error=error)
        self.stats["gets"] += 1
        value = self.data.get(request.key)
        return kvrpcpb.RawGetResponse(value=value or b"", not_found=value is None)

    async def raw_batch_get(self, request: kvrpcpb.RawBatchGetRequest, context: Any) -> kvrpcpb.RawBatchGetResponse:
        for key in request.keys:
            _, error = self._check(request.context, key)
            if error is not None:
                return kvrpcpb.RawBatchGetResponse(region_error=error)
        pairs = [kvrpcpb.KvPair(key=k, value=self.data[k]) for k in request.keys if k in self.data]
        return kvrpcpb.RawBatchGetResponse(pairs=pairs)

    async def raw_put(self, request: kvrpcpb.RawPutRequest, context: Any) -> kvrpcpb.RawPutResponse:
        region, error = self._check(request.context, request.key)
        if error is not None or region is None:
            return kvrpcpb.RawPutResponse(region_error=error)
        self.stats["puts"] += 1
        if self.drop_acked_writes:
            return kvrpcpb.RawPutResponse()  # acknowledged, never stored: the lost write
        acks = 1 + await self._replicate(region, {request.key.hex(): request.value.hex()})
        if acks * 2 <= len(region.peers):
            return kvrpcpb.RawPutResponse(error=f"not enough replicas: {acks} of {len(region.peers)} have it")
        self.data[request.key] = request.value
        return kvrpcpb.RawPutResponse()

    async def raw_delete(self, request: kvrpcpb.RawDeleteRequest, context: Any) -> kvrpcpb.RawDeleteResponse:
        region, error = self._check(request.context, request.key)
        if error is not None or region is None:
            return kvrpcpb.RawDeleteResponse(region_error=error)
        await self._replicate(region, {request.key.hex(): None})
        self.data.pop(request.key, None)
        return kvrpcpb.RawDeleteResponse()

    async def _replicate(self, region: RegionView, changes: dict[str, str | None]) -> int:
        """Apply ``changes`` on the region's other peers that answer; how many did."""
        peers = [s for s in region.peers if s != self.id]
        addresses = await self._status_addresses()
        results = await asyncio.gather(*(self._apply(addresses[s], changes) for s in peers if s in addresses))
        return sum(results)

    async def _apply(self, status_address: str, changes: dict[str, str | None]) -> bool:
        try:
            async with self.http().post(f"http://{status_address}/internal/apply", json=changes,
                                        timeout=aiohttp.ClientTimeout(total=0.3)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def _status_addresses(self) -> dict[int, str]:
        try:
            async with self.http().get(f"{self.pd_url}/double/stores",
                                       timeout=aiohttp.ClientTimeout(total=0.5)) as resp:
                docs = await resp.json()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return {}
        return {int(d["id"]): str(d["status_address"]) for d in docs if d["alive"] and int(d["id"]) != self.id}

    def grpc_handler(self) -> grpc.GenericRpcHandler:
        def unary(fn: Any, request_type: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=request_type.FromString,
                                                       response_serializer=lambda m: m.SerializeToString())

        return grpc.method_handlers_generic_handler("tikvpb.Tikv", {
            "RawGet": unary(self.raw_get, kvrpcpb.RawGetRequest),
            "RawBatchGet": unary(self.raw_batch_get, kvrpcpb.RawBatchGetRequest),
            "RawPut": unary(self.raw_put, kvrpcpb.RawPutRequest),
            "RawDelete": unary(self.raw_delete, kvrpcpb.RawDeleteRequest),
        })

    # -- status port ----------------------------------------------------------------------------

    def status_app(self) -> web.Application:
        routes = web.RouteTableDef()

        @routes.get("/status")
        async def status(request: web.Request) -> web.Response:
            return web.json_response({"store_id": self.id, "start_time": self.started, "version": "8.5.2-double"})

        @routes.get("/metrics")
        async def metrics(request: web.Request) -> web.Response:
            lines = [f'tikv_double_requests_total{{type="{k}"}} {v}' for k, v in self.stats.items()]
            return web.Response(text="\n".join(lines) + "\n")

        @routes.post("/internal/apply")
        async def apply(request: web.Request) -> web.Response:
            for key, value in (await request.json()).items():
                change = None if value is None else bytes.fromhex(value)
                self._set(bytes.fromhex(key), change)
                if self._during_catch_up is not None:
                    self._during_catch_up[bytes.fromhex(key)] = change
            return web.json_response({"ok": True})

        @routes.get("/internal/snapshot")
        async def snapshot(request: web.Request) -> web.Response:
            return web.json_response({k.hex(): v.hex() for k, v in self.data.items()})

        @routes.put("/admin/drop-acked-writes")
        async def drop_on(request: web.Request) -> web.Response:
            self.drop_acked_writes = True
            return web.json_response({"drop_acked_writes": True})

        @routes.delete("/admin/drop-acked-writes")
        async def drop_off(request: web.Request) -> web.Response:
            self.drop_acked_writes = False
            return web.json_response({"drop_acked_writes": False})

        app = web.Application()
        app.add_routes(routes)
        return app

    def _set(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    # -- life ----------------------------------------------------------------------------------

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def catch_up(self) -> None:
        """Copy the data of a live peer (a restarted store rebuilds from its peers); what peers apply
        meanwhile is kept on top of the copy."""
        self._during_catch_up = {}
        try:
            await self._copy_a_peer()
        finally:
            for key, value in self._during_catch_up.items():
                self._set(key, value)
            self._during_catch_up = None

    async def _copy_a_peer(self) -> None:
        for address in (await self._status_addresses()).values():
            try:
                async with self.http().get(f"http://{address}/internal/snapshot",
                                           timeout=aiohttp.ClientTimeout(total=2.0)) as resp:
                    doc = await resp.json()
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                continue
            self.data = {bytes.fromhex(k): bytes.fromhex(v) for k, v in doc.items()}
            log.info("caught up from a peer", extra={"keys": len(self.data), "peer": address})
            return

    async def open_ports(self) -> None:
        self._grpc = grpc.aio.server()
        self._grpc.add_generic_rpc_handlers((self.grpc_handler(),))
        self._grpc.add_insecure_port(f"{self.listen}:{self.grpc_port}")
        await self._grpc.start()
        self._site = web.AppRunner(self.status_app(), access_log=None)
        await self._site.setup()
        await web.TCPSite(self._site, self.listen, self.status_port).start()

    async def close_ports(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(0)
            self._grpc = None
        if self._site is not None:
            await self._site.cleanup()
            self._site = None

    async def heartbeats(self) -> None:
        while True:
            if not self.partitioned:
                await self._heartbeat()
            await asyncio.sleep(self.heartbeat_s)  # the store's heartbeat period

    async def _heartbeat(self) -> None:
        if time.monotonic() - self._last_beat > 3 * self.heartbeat_s + 0.3:  # away (stopped, partitioned)
            self.regions = []  # serve nothing until caught up
            await self.catch_up()
        body = {"store_id": self.id, "address": self.address, "status_address": self.status_address}
        try:
            async with self.http().post(f"{self.pd_url}/double/heartbeat", json=body,
                                        timeout=aiohttp.ClientTimeout(total=0.5)) as resp:
                doc = await resp.json()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            log.warning("heartbeat failed", extra={"error": repr(exc)})
            return
        if doc.get("tombstone"):
            log.warning("PD says this store is a tombstone", extra={"store": self.id})
            return
        self._last_beat = time.monotonic()
        self.regions = [RegionView(int(r["id"]), bytes.fromhex(r["start"]), bytes.fromhex(r["end"]), r["leader"],
                                   {int(k): int(v) for k, v in r["peers"].items()}, int(r["conf_ver"]),
                                   int(r["version"])) for r in doc["regions"]]

    async def set_partitioned(self, partitioned: bool) -> None:
        if partitioned == self.partitioned:
            return
        self.partitioned = partitioned
        if partitioned:
            await self.close_ports()
            log.info("partitioned: ports closed, heartbeats stopped")
        else:
            await self.open_ports()
            log.info("healed: ports open, heartbeating")


async def serve(args: argparse.Namespace) -> None:
    store = StoreDouble(args.id, args.pd, args.grpc_port, args.status_port, args.heartbeat_s,
                        listen=args.listen, advertise=args.advertise_host)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(store.set_partitioned(True)))
    loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(store.set_partitioned(False)))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await store.open_ports()
    beats = asyncio.create_task(store.heartbeats())
    log.info("store double serving", extra={"store": args.id, "grpc": store.address,
                                           "status_address": store.status_address})
    try:
        await stop.wait()
    finally:
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        await store.close_ports()
        if store._http is not None:
            await store._http.close()


def main() -> None:
    parser = double_arguments(__doc__, advertise="the host PD gives clients")
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--pd", required=True, help="the PD double's HTTP URL")
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--status-port", type=int, required=True)
    parser.add_argument("--heartbeat-s", type=float, default=0.2)
    run_double(parser, serve)


if __name__ == "__main__":
    main()

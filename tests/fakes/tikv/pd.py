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

This module is the process (arguments, both servers); the double itself is in three parts:
:mod:`tests.fakes.tikv.pd_cluster` (stores, regions, PD's rules), :mod:`tests.fakes.tikv.pd_http`
(the HTTP routes and PD's JSON shapes) and :mod:`tests.fakes.tikv.pd_grpc` (the gRPC methods).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import grpc
from aiohttp import web

from tests.fakes.tikv.pd_cluster import PDState
from tests.fakes.tikv.pd_grpc import grpc_handlers
from tests.fakes.tikv.pd_http import http_app
from tests.fakes.tikv.process import double_arguments, run_double

log = logging.getLogger("pd-double")


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
    log.info("pd double serving", extra={"http_port": args.http_port, "grpc_port": args.grpc_port})
    try:
        await asyncio.Event().wait()  # until killed
    finally:
        await runner.cleanup()
        await server.stop(0)


def main() -> None:
    parser = double_arguments(__doc__, advertise="the host in PD's member URLs")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--splits", default="0333,0666", help="region boundaries, comma separated")
    parser.add_argument("--disconnect-after-s", type=float, default=1.0)
    parser.add_argument("--max-store-down-time-s", type=float, default=3.0)
    parser.add_argument("--election-s", type=float, default=0.6)
    parser.add_argument("--catch-up-s", type=float, default=0.5)
    run_double(parser, serve)


if __name__ == "__main__":
    main()

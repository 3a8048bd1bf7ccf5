"""The PD double's gRPC service (``pdpb.PD``): the methods the raw KV client calls (``GetMembers``,
``GetRegion``, ``GetPrevRegion``, ``GetStore``, ``ScanRegions``), answered from
:class:`tests.fakes.tikv.pd_cluster.PDState` (ticked before a region is looked up).
"""

from __future__ import annotations

from typing import Any

import grpc
from tikv._proto import metapb_pb2 as metapb
from tikv._proto import pdpb_pb2 as pdpb

from tests.fakes.tikv.pd_cluster import CLUSTER_ID, MEMBER_ID, VERSION, PDState, Region


def _header() -> pdpb.ResponseHeader:
    return pdpb.ResponseHeader(cluster_id=CLUSTER_ID)


def _region_meta(region: Region) -> tuple[metapb.Region, metapb.Peer | None]:
    """The region as ``metapb`` has it, and its leader's peer (``None`` while it has no leader)."""
    peers = [metapb.Peer(id=pid, store_id=sid) for sid, pid in sorted(region.peers.items())]
    meta = metapb.Region(id=region.id, start_key=region.start, end_key=region.end, peers=peers,
                         region_epoch=metapb.RegionEpoch(conf_ver=region.conf_ver, version=region.version))
    leader = next((p for p in peers if p.store_id == region.leader), None)
    return meta, leader


def grpc_handlers(state: PDState) -> grpc.GenericRpcHandler:
    """The ``pdpb.PD`` methods over ``state``; an unknown store is PD's ``STORE_TOMBSTONE`` error."""

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

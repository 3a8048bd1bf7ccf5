"""Observing TiKV: PD's view checked against each store's status port; a failed observation is blindness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from oplab.infra import free_port
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.details import snapshot_details
from subjects.tikv.invariants import StoreNotUp
from subjects.tikv.observer import TiKVObserver
from subjects.tikv.settings import TiKVSettings
from tests.fakes.tikv import TiKVDouble
from tests.subjects.tikv.conftest import eventually, settings_for


async def test_a_healthy_cluster_reads_up_with_pds_own_words(double: TiKVDouble, cluster: TiKVCluster) -> None:
    snap = await TiKVObserver(cluster=cluster).observe()
    assert snap.ok, snap.error
    assert snap.subject == "tikv"
    assert [(n.node, n.status, n.state) for n in snap.nodes] == [
        ("store-1", "up", "Up"), ("store-2", "up", "Up"), ("store-3", "up", "Up")]
    assert [(c.name, c.status, c.state) for c in snap.components] == [("pd-double", "up", "leader")]
    details = snapshot_details(snap)
    assert details.regions is not None and details.regions.total == 3 and details.regions.under_replicated == 0
    facts = details.stores["store-1"]
    assert facts.probe_ok and facts.capacity_bytes == 100 * 1024**3 and facts.region_count == 3
    assert sum(f.leader_count for f in details.stores.values()) == 3
    assert details.pd_leader == "pd-double"


async def test_a_killed_store_is_seen_at_the_next_observation_while_pd_still_says_up(
        double: TiKVDouble, cluster: TiKVCluster) -> None:
    observer = TiKVObserver(cluster=cluster)
    await cluster.control.kill("store-2")
    snap = await observer.observe()
    node = snap.node("store-2")
    assert node is not None and node.status == "down"
    assert node.state == "Up"  # PD has not noticed yet (its threshold is 20 s on a real cluster)
    assert "status port cannot connect" in node.detail
    history = [snap, await eventually(lambda: _observe_later(observer, snap), 3, "a second snapshot")]
    [violation] = StoreNotUp().evaluate(history, [])
    assert violation.entity == "store-2" and violation.evidence["status_port"].startswith("cannot connect")


async def _observe_later(observer: TiKVObserver, first: object) -> object:
    snap = await observer.observe()
    return snap if (snap.observed_at - first.observed_at).total_seconds() >= 0.4 else None  # type: ignore[attr-defined]


async def test_pd_calls_a_silent_store_disconnected_then_down_and_its_regions_lose_a_peer(
        fresh_double: TiKVDouble) -> None:
    cluster = TiKVCluster(settings_for(fresh_double))
    observer = TiKVObserver(cluster=cluster)
    try:
        await cluster.control.pause("store-3")

        async def state(name: str) -> object:
            snap = await observer.observe()
            node = snap.node("store-3")
            return snap if node is not None and node.state == name else None

        disconnected = await eventually(lambda: state("Disconnected"), 5, "store-3 Disconnected")
        assert snapshot_details(disconnected).regions.down_peer == 3  # type: ignore[union-attr]
        down = await eventually(lambda: state("Down"), 8, "store-3 Down")
        regions = snapshot_details(down).regions
        assert regions is not None and regions.miss_peer == 3
        assert snapshot_details(down).stores["store-3"].pd_state == "Down"
        await cluster.control.unpause("store-3")
        healed = await eventually(lambda: state("Up"), 10, "store-3 Up again")
        assert healed.node("store-3").status == "up"  # type: ignore[union-attr]
    finally:
        await cluster.control.unpause("store-3")
        await cluster.close()


@pytest.fixture
async def broken_pd(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """A server on 127.0.0.1 that is no PD: garbage, errors, or silence, on the paths PD serves."""
    hang = asyncio.Event()

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>not PD</html>")

    async def error(request: web.Request) -> web.Response:
        return web.Response(status=500, text="etcdserver: request timed out")

    async def silent(request: web.Request) -> web.Response:
        await hang.wait()
        return web.Response(text="{}")

    app = web.Application()
    app.router.add_get("/garbage/pd/api/v1/{tail:.*}", garbage)
    app.router.add_get("/error/pd/api/v1/{tail:.*}", error)
    app.router.add_get("/silent/pd/api/v1/{tail:.*}", silent)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        yield {"garbage": f"{base}/garbage", "error": f"{base}/error", "silent": f"{base}/silent",
               "refused": f"http://127.0.0.1:{free_port()}"}
    finally:
        hang.set()
        await runner.cleanup()


@pytest.mark.parametrize("kind, reason", [
    ("garbage", "not JSON"),
    ("error", "HTTP 500: etcdserver: request timed out"),
    ("silent", "timed out"),
    ("refused", "ClientConnectorError"),
])
async def test_a_pd_that_answers_garbage_errors_or_nothing_is_blindness_never_health(
        broken_pd: dict[str, str], kind: str, reason: str) -> None:
    observer = TiKVObserver(TiKVSettings(pd_url=broken_pd[kind], http_timeout_s=0.3, observe_timeout_s=2.0))
    try:
        snap = await observer.observe()
    finally:
        await observer.close()
    assert snap.ok is False and reason in (snap.error or ""), snap.error
    assert snap.nodes == [] and snap.components == []

"""The node service over HTTP: enforcement across nodes, management API, health, metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from oplab.infra import free_port
from subjects.ratelimiter.cluster import RateLimiterCluster
from subjects.ratelimiter.limiter import LimiterStore
from subjects.ratelimiter.node import Node, identity, parse_args
from subjects.ratelimiter.settings import RateLimiterSettings
from tests.servers import EmbeddedValkey
from tests.subjects.ratelimiter.conftest import REPO, Cluster, eventually, node_settings, running_cluster, settings_env


@pytest.fixture(scope="module")
async def slow_cluster(valkey_server: EmbeddedValkey, tmp_path_factory: pytest.TempPathFactory
                       ) -> AsyncIterator[Cluster]:
    """A 5 s window, so a sequence of requests surely falls in one window even on a loaded machine, and
    Redis calls that may take 3 s (not 0.5): these tests are about the API, a slow answer is no 503 here."""
    async with running_cluster(tmp_path_factory.mktemp("nodes"), valkey_server.url, window_s=5.0,
                               redis_timeout_s=3.0) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


def url(cluster: Cluster, node: str, path: str) -> str:
    return cluster.settings.node_urls[node] + path


async def test_limits_are_enforced_exactly_across_nodes(slow_cluster: Cluster,
                                                        http: aiohttp.ClientSession) -> None:
    c = slow_cluster
    status, body = await call(http, "PUT", url(c, "node-1", "/admin/limits/api:checkout"), {"limit": 4})
    assert status == 200 and body["limit"] == 4 and body["previous"] == 15
    store = c.lab.store
    before = await store.now_us()
    replies = []
    for i in range(7):
        node = ("node-1", "node-2")[i % 2]
        replies.append(await call(http, "POST", url(c, node, "/check"), {"key": "api:checkout"}))
    after = await store.now_us()
    assert [s for s, _ in replies] == [200, 200, 200, 200, 429, 429, 429]
    assert [b["allowed"] for _, b in replies] == [True] * 4 + [False] * 3
    assert [b["count"] for _, b in replies] == [1, 2, 3, 4, 4, 4, 4]
    assert [b["node"] for _, b in replies] == ["node-1", "node-2"] * 3 + ["node-1"]
    assert {b["limit"] for _, b in replies} == {4}
    entries = await store.entries("api:checkout")
    assert len(entries) == 4 and len({m for m, _ in entries}) == 4
    assert {m.split(":")[0] for m, _ in entries} == {"node-1", "node-2"}
    assert all(before <= score <= after for _, score in entries), "entries are scored by Redis TIME"


async def test_setting_a_limit_through_the_api_changes_enforcement(slow_cluster: Cluster,
                                                                   http: aiohttp.ClientSession) -> None:
    c = slow_cluster
    assert (await call(http, "PUT", url(c, "node-3", "/admin/limits/user:bob"), {"limit": 2}))[0] == 200
    statuses = [(await call(http, "POST", url(c, "node-2", "/check"), {"key": "user:bob"}))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert (await call(http, "PUT", url(c, "node-1", "/admin/limits/user:bob"), {"limit": 4}))[0] == 200
    statuses = [(await call(http, "POST", url(c, "node-3", "/check"), {"key": "user:bob"}))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert (await c.lab.store.limits())["user:bob"] == 4


async def test_management_api(slow_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    c = slow_cluster
    status, body = await call(http, "GET", url(c, "node-2", "/admin/nodes"))
    assert status == 200
    assert [(n["node"], n["status"]) for n in body["nodes"]] == [(f"node-{i}", "up") for i in (1, 2, 3)]
    assert all(n["last_seen"] and n["pid"] and n["url"] == c.settings.node_urls[n["node"]] for n in body["nodes"])

    checks = [await call(http, "POST", url(c, "node-1", "/check"), {"key": "user:alice"}) for _ in range(3)]
    assert [status for status, _ in checks] == [200] * 3, checks
    status, body = await call(http, "GET", url(c, "node-3", "/admin/counters"))
    counters = {x["key"]: x for x in body["counters"]}
    assert status == 200 and set(counters) == set(c.settings.policy)
    assert counters["user:alice"] == {"key": "user:alice", "count": 3, "limit": 40, "future_entries": 0}

    status, body = await call(http, "POST", url(c, "node-1", "/admin/counters/user:alice/reset"))
    assert (status, body["removed"]) == (200, 3)
    _, body = await call(http, "GET", url(c, "node-1", "/admin/counters"))
    assert {x["key"]: x["count"] for x in body["counters"]}["user:alice"] == 0


async def test_bad_requests_are_refused_with_json(slow_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    c = slow_cluster
    assert (await call(http, "POST", url(c, "node-1", "/check"), {"key": "nope"}))[0] == 404
    assert (await call(http, "POST", url(c, "node-1", "/check"), {"cost": 1}))[0] == 400
    assert (await call(http, "POST", url(c, "node-1", "/check"), {"key": "user:alice", "cost": 0}))[0] == 400
    assert (await call(http, "POST", url(c, "node-1", "/admin/counters/nope/reset")))[0] == 404
    assert (await call(http, "PUT", url(c, "node-1", "/admin/limits/nope"), {"limit": 3}))[0] == 404
    status, body = await call(http, "PUT", url(c, "node-1", "/admin/limits/user:alice"), {"limit": -1})
    assert status == 400 and "limit" in body["error"]
    assert (await c.lab.store.limits())["user:alice"] == 40


async def test_health_and_metrics(slow_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    c = slow_cluster
    status, body = await call(http, "GET", url(c, "node-2", "/health"))
    assert status == 200 and body["status"] == "ok" and body["node"] == "node-2" and body["redis_ms"] >= 0
    await call(http, "POST", url(c, "node-2", "/check"), {"key": "tenant:acme"})
    async with http.get(url(c, "node-2", "/metrics")) as resp:
        text = await resp.text()
    assert resp.status == 200
    assert 'ratelimiter_checks_total{node="node-2",outcome="allowed"}' in text
    assert 'ratelimiter_check_seconds_count{node="node-2"}' in text
    assert 'ratelimiter_redis_up{node="node-2"} 1.0' in text


async def test_health_is_503_when_redis_is_unreachable_and_sigterm_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    settings = node_settings(f"redis://127.0.0.1:{free_port()}/0", {"node-9": f"http://127.0.0.1:{port}"})
    log_path = tmp_path / "node.log"
    # the lab's logging settings, as the launcher (or compose) passes them to every process
    env = {**settings_env(settings), "OPLAB_LOG_FORMAT": "json", "OPLAB_LOG_LEVEL": "INFO"}

    def spawn() -> subprocess.Popen[bytes]:
        with log_path.open("wb") as log:
            return subprocess.Popen([sys.executable, "-m", "subjects.ratelimiter.node", "--id", "node-9"],
                                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    proc = await asyncio.to_thread(spawn)
    lab = RateLimiterCluster(settings)
    try:
        probe = await eventually(lambda: _answered(lab), timeout=15.0, what="node-9 answering /health")
        assert probe.status == 503 and "redis" in probe.detail
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            status, body = await call(http, "POST", f"{base}/check", {"key": "user:alice"})
            assert status == 503 and "redis unavailable" in body["error"]
            # the ghost_allowing fault hook: failing open, the node admits without consulting Redis at all
            assert (await call(http, "GET", f"{base}/admin/faults"))[1]["fail_open"] is False
            status, body = await call(http, "PUT", f"{base}/admin/faults/fail_open")
            assert status == 200 and body["fail_open"] is True and body["previous"] is False
            status, body = await call(http, "POST", f"{base}/check", {"key": "user:alice", "cost": 1000})
            assert status == 200 and body == {"allowed": True, "count": 0, "limit": 40, "node": "node-9"}
            status, body = await call(http, "DELETE", f"{base}/admin/faults/fail_open")
            assert status == 200 and body["fail_open"] is False and body["previous"] is True
            assert (await call(http, "POST", f"{base}/check", {"key": "user:alice"}))[0] == 503
    finally:
        await lab.close()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)
    assert code == 0
    lines = (await asyncio.to_thread(log_path.read_text)).splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == len(lines), lines  # every line is structured, nothing printed beside the log
    assert [(r["logger"], r["node"]) for r in records if r["msg"] == "node stopped"] == [
        ("subjects.ratelimiter.node", "node-9")]
    failed = [r for r in records if r["msg"] == "heartbeat failed"]  # said once, with the reason as a field
    assert len(failed) == 1 and failed[0]["level"] == "warning" and failed[0]["node"] == "node-9" and failed[0]["error"]


def test_a_node_reads_the_lab_logging_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_LOG_FORMAT", "json")
    monkeypatch.setenv("OPLAB_LOG_LEVEL", "debug")
    args = parse_args(["--id", "node-1"])
    assert (args.log_format, args.log_level) == ("json", "debug")
    assert parse_args(["--id", "node-1", "--log-format", "kv"]).log_format == "kv"  # an argument wins
    monkeypatch.setenv("OPLAB_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit) as refused:  # refused as a service refuses it, not taken for kv
        parse_args(["--id", "node-1"])
    assert refused.value.code == 2


async def _answered(lab: RateLimiterCluster) -> Any:
    probe = await lab.probe("node-9")
    return probe if probe.status is not None else None


async def test_a_restarted_node_reports_a_new_start(slow_cluster: Cluster) -> None:
    lab = slow_cluster.lab
    store: LimiterStore = lab.store
    _, before = await store.nodes()
    await lab.control.stop("node-3")
    await lab.control.start("node-3")
    await lab.wait_healthy("node-3", 15.0)
    _, after = await store.nodes()
    assert after["node-3"].pid != before["node-3"].pid
    assert (after["node-3"].started_at_us or 0) > (before["node-3"].started_at_us or 0)


def test_fault_hooks_are_served_only_when_enabled() -> None:
    def routes(**overrides: Any) -> set[str]:
        settings = node_settings("redis://127.0.0.1:1/0", {"node-1": "http://127.0.0.1:1"}, **overrides)
        node = Node(settings, identity(settings, "node-1", "127.0.0.1", None, None))
        return {f"{r.method} {r.resource.canonical}" for r in node.app().router.routes() if r.resource}

    hooks = {"GET /admin/faults", "PUT /admin/faults/fail_open", "DELETE /admin/faults/fail_open"}
    assert hooks <= routes(fault_hooks=True)
    assert not any("/admin/faults" in r for r in routes(fault_hooks=False))
    assert RateLimiterSettings(nodes="node-1=http://127.0.0.1:1").fault_hooks is False, "off unless the lab asks"

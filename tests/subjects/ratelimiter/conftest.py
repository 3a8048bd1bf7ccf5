"""Fixtures for the rate limiter: real nodes under a real supervisord, on the session's valkey.

``running_cluster`` starts a supervisord (inet_http_server on 127.0.0.1:<free
port>) running three node programs (program name == node id,
``autorestart=false``, ``startsecs=0``) with its own Redis key prefix, so
clusters never see each other's state. Starting one costs ~3 s (supervisord
spawns on its first 1 s tick), so tests share them: ``cluster`` per package,
``slow_cluster`` in test_node.py. The nodes inherit supervisord's environment
(``REDIS_URL``, ``OPLAB_RL_*``). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from events import ObsSnapshot, WorkloadStats
from events.waiting import WaitTimeout, wait_until
from oplab.infra import free_port
from subjects.contract import Invariant, Observer, Violation, Workload
from subjects.ratelimiter.cluster import RateLimiterCluster
from subjects.ratelimiter.fault_kit import RateLimiterFaultKit
from subjects.ratelimiter.observer import RateLimiterObserver
from subjects.ratelimiter.settings import RateLimiterSettings
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from subjects.supervisor import Supervisor, SupervisorError
from tests.servers import EmbeddedValkey
from tests.subjects.playbooks import run_playbook  # noqa: F401 - the rate limiter tests import it from here

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0, interval: float = 0.05,
                     what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy (returned); WaitTimeout, naming ``what`` and the
    last answer, after ``timeout`` seconds (:func:`events.waiting.wait_until` with the tests' defaults)."""
    return await wait_until(check, timeout=timeout, interval=interval, what=what)  # type: ignore[return-value]


@asynccontextmanager
async def running(workload: Workload, interval_s: float | None,
                  also: list[WorkloadStats] | None = None) -> AsyncIterator[list[WorkloadStats]]:
    """Run ``workload`` while the block runs (``interval_s``: None for its own); each interval's stats are
    appended to the yielded list, and to ``also`` if given."""
    stats: list[WorkloadStats] = []

    async def sink(s: WorkloadStats) -> None:
        stats.append(s)
        if also is not None:
            also.append(s)

    stop = asyncio.Event()
    task = asyncio.create_task(workload.run(stop, sink, interval_s))
    try:
        yield stats
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@dataclass
class Watcher:
    """A miniature monitor: observes through the observer, keeps the history, evaluates one invariant."""

    observer: Observer
    history: list[ObsSnapshot] = field(default_factory=list)
    workload: list[WorkloadStats] = field(default_factory=list)
    seen: dict[tuple[str, str], Violation] = field(default_factory=dict)
    """Every (invariant, entity) any invariant reported after any observation, as a monitor would."""

    async def observe(self) -> ObsSnapshot:
        snap = await self.observer.observe()
        self.history.append(snap)
        for v in self.violations():
            self.seen.setdefault((v.invariant, v.entity), v)
        return snap

    async def until_violated(self, invariant: Invariant, entity: str, timeout: float = 10.0) -> Violation:
        async def check() -> Violation | None:
            await self.observe()
            return next((v for v in invariant.evaluate(self.history, self.workload) if v.entity == entity),
                        None)

        return await eventually(check, timeout, interval=0.1, what=f"{invariant.name} on {entity}")

    async def until_cleared(self, invariant: Invariant, entity: str, timeout: float = 10.0) -> ObsSnapshot:
        async def check() -> ObsSnapshot | None:
            snap = await self.observe()
            violated = any(v.entity == entity for v in invariant.evaluate(self.history, self.workload))
            return None if violated or not snap.ok else snap

        return await eventually(check, timeout, interval=0.1, what=f"{invariant.name} cleared on {entity}")

    def violations(self) -> list[Violation]:
        """Every invariant's violations on the history so far."""
        return [v for inv in self.observer.invariants() for v in inv.evaluate(self.history, self.workload)]

    def traffic(self, workload: Workload, interval_s: float = 0.5
                ) -> AbstractAsyncContextManager[list[WorkloadStats]]:
        """Run ``workload`` while the block runs; its stats are appended to ``self.workload`` (and to the
        yielded list)."""
        return running(workload, interval_s, also=self.workload)

    @asynccontextmanager
    async def watching(self, interval_s: float = 0.1) -> AsyncIterator[None]:
        """Keep observing in the background (as the monitor does while an agent acts)."""
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                await self.observe()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval_s)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            stop.set()
            await task

    async def intervals(self, stats: list[WorkloadStats], n: int, timeout: float = 10.0) -> None:
        """Observe until ``n`` more workload intervals have been reported."""
        target = len(stats) + n

        async def enough() -> bool:
            await self.observe()
            return len(stats) >= target

        await eventually(enough, timeout, interval=0.1, what=f"{n} more workload intervals")




@dataclass
class Cluster:
    """A running test cluster and the lab's roles on it, all acting through one :class:`RateLimiterCluster`
    (``lab``), so they share its connections."""

    settings: RateLimiterSettings
    lab: RateLimiterCluster
    observer: RateLimiterObserver
    toolbox: RateLimiterToolbox
    kit: RateLimiterFaultKit
    supervisord: subprocess.Popen[bytes]
    logs: Path

    @classmethod
    def of(cls, settings: RateLimiterSettings, supervisord: subprocess.Popen[bytes], logs: Path) -> Cluster:
        lab = RateLimiterCluster(settings)
        return cls(settings, lab, RateLimiterObserver(cluster=lab), RateLimiterToolbox(cluster=lab),
                   RateLimiterFaultKit(cluster=lab), supervisord, logs)

    async def close(self) -> None:
        """Stop the kit's running faults and release every role's connections (all the shared cluster's)."""
        await self.kit.close()
        await self.toolbox.close()
        await self.observer.close()
        await self.lab.close()

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text() if path.exists() else ""


def node_settings(redis_url: str, nodes: dict[str, str], supervisor_url: str = "http://127.0.0.1:1/RPC2",
                  **overrides: Any) -> RateLimiterSettings:
    return RateLimiterSettings(
        redis_url=redis_url,
        nodes=",".join(f"{n}={u}" for n, u in nodes.items()),
        supervisor_url=supervisor_url,
        key_prefix=overrides.pop("key_prefix", f"t{secrets.token_hex(4)}"),
        fault_hooks=overrides.pop("fault_hooks", True),  # the test cluster plays the lab's nodes
        **overrides,
    )


def settings_env(settings: RateLimiterSettings) -> dict[str, str]:
    """This process's environment with ``settings`` in place of any ``OPLAB_RL_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_RL_")}
    return {**env, **settings.as_env(), "PYTHONUNBUFFERED": "1"}


def supervisord_conf(tmp: Path, port: int, nodes: dict[str, str]) -> str:
    lines = [
        "[supervisord]",
        f"logfile={tmp / 'supervisord.log'}",
        f"pidfile={tmp / 'supervisord.pid'}",
        f"childlogdir={tmp}",
        "nodaemon=true",
        "",
        "[inet_http_server]",
        f"port=127.0.0.1:{port}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=http://127.0.0.1:{port}",
    ]
    for node, url in nodes.items():
        node_port = url.rsplit(":", 1)[1]
        lines += [
            "",
            f"[program:{node}]",
            f"command={sys.executable} -m subjects.ratelimiter.node --id {node} --host 127.0.0.1 "
            f"--port {node_port}",
            f"directory={REPO}",
            "autostart=true",
            "autorestart=false",
            "startsecs=0",
            "stopsignal=TERM",
            "stopwaitsecs=5",
            "redirect_stderr=true",
            f"stdout_logfile={tmp / (node + '.log')}",
            "stdout_logfile_maxbytes=0",
        ]
    return "\n".join(lines) + "\n"


def spawn_supervisord(tmp: Path, port: int, settings: RateLimiterSettings) -> subprocess.Popen[bytes]:
    """Write the config and start ``supervisord -n`` (the nodes inherit its environment)."""
    tmp.mkdir(parents=True, exist_ok=True)
    conf = tmp / "supervisord.conf"
    conf.write_text(supervisord_conf(tmp, port, settings.node_urls))
    return subprocess.Popen([str(BIN / "supervisord"), "-c", str(conf), "-n"], env=settings_env(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@asynccontextmanager
async def running_cluster(tmp: Path, redis_url: str, n: int = 3, **overrides: Any) -> AsyncIterator[Cluster]:
    """supervisord + ``n`` nodes, ready (every node healthy with a fresh heartbeat) on entry."""
    sup_port = free_port()
    nodes = {f"node-{i}": f"http://127.0.0.1:{free_port()}" for i in range(1, n + 1)}
    settings = node_settings(redis_url, nodes, f"http://127.0.0.1:{sup_port}/RPC2", **overrides)
    proc = await asyncio.to_thread(spawn_supervisord, tmp, sup_port, settings)
    cluster = Cluster.of(settings, proc, tmp)
    try:
        async def ready(node: str) -> None:
            await eventually(lambda: _healthy(cluster.lab, node), timeout=20.0, what=f"{node} healthy")

        await asyncio.gather(*(ready(node) for node in nodes))
        yield cluster
    finally:
        await cluster.close()
        await _stop_programs(settings.supervisor_url)
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 5)


async def _stop_programs(url: str) -> None:
    """SIGTERM every node at once (supervisord alone stops them one per ~1 s tick), wait until they exit."""
    sup = Supervisor(url)
    try:
        await asyncio.to_thread(sup.call, "supervisor.signalAllProcesses", "TERM")

        async def all_stopped() -> bool:
            infos = await asyncio.to_thread(sup.processes)
            return all(i["statename"] not in ("RUNNING", "STARTING", "STOPPING") for i in infos)

        await eventually(all_stopped, timeout=10.0, what="nodes stopped")
    except (SupervisorError, WaitTimeout):
        pass  # supervisord gone or slow: terminating it below stops what is left


async def _healthy(lab: RateLimiterCluster, node: str) -> bool:
    """``node`` answers /health and its heartbeat is fresh."""
    if not (await lab.probe(node)).ok:
        return False
    record = await lab.heartbeat(node)
    return record is not None and record.fresh


@pytest.fixture(scope="package")
async def cluster(valkey_server: EmbeddedValkey, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Cluster]:
    """A 3-node cluster (1 s window, default policy) shared by this package's tests, which must each
    leave it healthy and fault-free (faults reverted in ``finally``)."""
    async with running_cluster(tmp_path_factory.mktemp("cluster"), valkey_server.url) as c:
        yield c


@pytest.fixture
def watcher(cluster: Cluster) -> Watcher:
    return Watcher(cluster.observer)


@pytest.fixture
async def store_settings(valkey_server: EmbeddedValkey) -> RateLimiterSettings:
    """Settings with a fresh key prefix on the session valkey (no nodes running)."""
    return node_settings(valkey_server.url, {"node-1": "http://127.0.0.1:1"}, window_s=2.0,
                         policy={"k:small": 3, "k:big": 100})

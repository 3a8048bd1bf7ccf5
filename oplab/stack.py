"""The local stack: embedded infra + rate limiter nodes + services under supervisord.

``up`` picks free ports on 127.0.0.1, writes ``<home>/supervisord.conf`` and
``<home>/stack.json``, starts supervisord, then starts programs in order,
waiting for each layer to be ready (infra listening, nodes healthy) before the
next. ``down`` asks supervisord to stop everything (services get SIGTERM and
shut down cleanly, in reverse order) and waits for it to exit.

Each ``up`` is a new run (a new run id); the rate limiter's keys are prefixed
with the run id, so a run starts from a clean subject state even on a shared
Redis. The NATS store under ``<home>/nats`` keeps every run for replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from events import ServiceStarted, new_run_id
from events.bus import Bus, Delivered
from events.settings import BusSettings
from events.subjects import run_type
from oplab.infra import free_port, nats_command, valkey_command
from oplab.settings import LabSettings
from oplab.supervisor import SERVICES, Program, Supervisor, render_config, supervisord_binary

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """The stack could not be started or reached; the message says what to do."""


@dataclass
class StackInfo:
    run: str
    nats_url: str
    redis_url: str
    supervisor_url: str
    nodes: dict[str, str]
    fault: str
    mode: str
    embedded_nats: bool
    embedded_redis: bool
    started_at: float

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))
        path.chmod(0o600)  # holds the supervisor's credentials

    @classmethod
    def load(cls, path: Path) -> StackInfo | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None


Progress = Callable[[str], None]


class Stack:
    def __init__(self, settings: LabSettings | None = None) -> None:
        self.settings = settings or LabSettings()
        self.home = self.settings.home.resolve()

    # -- inspection -------------------------------------------------------------

    def info(self) -> StackInfo | None:
        return StackInfo.load(self.home / "stack.json")

    def supervisor(self) -> Supervisor | None:
        info = self.info()
        if info is None:
            return None
        sup = Supervisor(info.supervisor_url)
        return sup if sup.alive() else None

    def require(self) -> tuple[StackInfo, Supervisor]:
        info, sup = self.info(), self.supervisor()
        if info is None or sup is None:
            raise StackError("no stack is running here: start one with `oplab up` (or `oplab demo`)")
        return info, sup

    def service_env(self, info: StackInfo) -> dict[str, str]:
        """The environment every child process gets."""
        return {
            "OPLAB_RUN": info.run,
            "NATS_URL": info.nats_url,
            "REDIS_URL": info.redis_url,
            "OPLAB_HOME": str(self.home),
            "OPLAB_RL_NODES": ",".join(f"{k}={v}" for k, v in info.nodes.items()),
            "OPLAB_RL_SUPERVISOR_URL": info.supervisor_url + "/RPC2",
            "OPLAB_RL_KEY_PREFIX": f"rl:{info.run}",
            "OPLAB_RL_FAULT_HOOKS": "1",  # the lab's own nodes accept the chaos service's hooks
            "OPLAB_FAULT": info.fault,
            "OPLAB_DIRECTOR_MODE": info.mode,
            "OPLAB_SCENARIO": self.settings.scenario,
            "PYTHONUNBUFFERED": "1",
        }

    # -- up / down ----------------------------------------------------------------

    def up(self, *, fault: str, mode: str, progress: Progress = lambda _: None) -> StackInfo:
        if self.supervisor() is not None:
            info = self.info()
            raise StackError(f"a stack is already running here (run {info.run if info else '?'}): "
                             "`oplab down` first")
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        info = self._plan(fault, mode)
        programs = self._programs(info)
        conf = self.home / "supervisord.conf"
        conf.write_text(render_config(self.home, info.supervisor_url, programs))
        conf.chmod(0o600)
        info.save(self.home / "stack.json")
        progress(f"run {info.run}: starting supervisord")
        subprocess.run([supervisord_binary(), "-c", str(conf)], check=True, env=self._child_env(info))
        sup = Supervisor(info.supervisor_url)
        _wait(lambda: sup.alive(), self.settings.start_timeout_s, "supervisord did not come up")
        try:
            self._start_all(info, sup, progress)
        except Exception:
            progress("start failed: stopping what was started")
            self.down()
            raise
        return info

    def _plan(self, fault: str, mode: str) -> StackInfo:
        nats_url = self.settings.nats_url or f"nats://127.0.0.1:{free_port()}"
        redis_url = self.settings.redis_url or f"redis://127.0.0.1:{free_port()}/0"
        nodes = {f"node-{i}": f"http://127.0.0.1:{free_port()}" for i in range(1, self.settings.nodes + 1)}
        return StackInfo(run=new_run_id(), nats_url=nats_url, redis_url=redis_url,
                         supervisor_url=f"http://lab:{secrets.token_urlsafe(16)}@127.0.0.1:{free_port()}",
                         nodes=nodes, fault=fault,
                         mode=mode, embedded_nats=self.settings.nats_url is None,
                         embedded_redis=self.settings.redis_url is None, started_at=time.time())

    def _child_env(self, info: StackInfo) -> dict[str, str]:
        return {**os.environ, **self.service_env(info)}

    def _programs(self, info: StackInfo) -> list[Program]:
        py = sys.executable
        programs: list[Program] = []
        if info.embedded_nats:
            programs.append(Program("nats", nats_command(self.home / "nats", _port(info.nats_url)),
                                    priority=10, autorestart="true"))
        if info.embedded_redis:
            (self.home / "valkey").mkdir(parents=True, exist_ok=True)
            programs.append(Program("valkey", valkey_command(self.home / "valkey", _port(info.redis_url)),
                                    priority=10, autorestart="true"))
        for node, url in info.nodes.items():
            programs.append(Program(node, [py, "-m", "subjects.ratelimiter.node", "--id", node,
                                           "--port", str(_port(url))], priority=20, autorestart="false"))
        for priority, service in enumerate(SERVICES, start=30):
            numprocs = self.settings.agents if service == "agent" else 1
            programs.append(Program(service, [py, "-m", f"services.{service}"], priority=priority,
                                    numprocs=numprocs))
        return programs

    def _start_all(self, info: StackInfo, sup: Supervisor, progress: Progress) -> None:
        timeout = self.settings.start_timeout_s
        if info.embedded_nats:
            progress(f"starting nats-server on {info.nats_url}")
            sup.start("nats")
        if info.embedded_redis:
            progress(f"starting valkey on {info.redis_url}")
            sup.start("valkey")
        _wait(lambda: _listening(info.nats_url), timeout, f"NATS at {redacted(info.nats_url)} is not reachable")
        _wait(lambda: _listening(info.redis_url), timeout, f"Redis at {redacted(info.redis_url)} is not reachable")
        for node, url in info.nodes.items():
            progress(f"starting {node} on {url}")
            sup.start(node)
        for node, url in info.nodes.items():
            _wait(lambda u=url: _healthy(u), timeout, f"{node} at {url} did not become healthy; "
                                                      f"see {self.home / 'logs' / (node + '.log')}")
        for service in SERVICES:
            progress(f"starting {service}")
            if service == "agent" and self.settings.agents > 1:
                sup.start_group(service)
            else:
                sup.start(service)
        progress("waiting for every service to report ready")
        missing = asyncio.run(_wait_services_ready(info, set(SERVICES), timeout))
        if missing:
            raise StackError(f"not ready within {timeout:.0f}s: {', '.join(sorted(missing))}; "
                             f"see {self.home / 'logs'}")

    def down(self, progress: Progress = lambda _: None) -> bool:
        """Stop everything; True if something was running."""
        info = self.info()
        sup = Supervisor(info.supervisor_url) if info else None
        if sup is None or not sup.alive():
            return False
        progress("stopping services (SIGTERM, each finishes its work) and infrastructure: a few seconds")
        pid = _read_pid(self.home / "supervisord.pid")
        with contextlib.suppress(OSError):
            sup.shutdown()
        if pid is not None:
            _wait(lambda: not _pid_alive(pid), 60.0, "supervisord did not exit")
        return True

    def restart(self, service: str) -> None:
        """Stop (SIGTERM) and start one program; for a service, wait until it reports ready."""
        info, sup = self.require()
        names = {p["group"] for p in sup.processes()}
        if service not in names:
            raise StackError(f"unknown service {service!r}; running: {', '.join(sorted(names))}")
        for proc in sup.processes():
            if proc["group"] == service and proc["statename"] in ("RUNNING", "STARTING"):
                sup.stop(f"{proc['group']}:{proc['name']}")
        started_after = time.time()
        if service == "agent" and self.settings.agents > 1:
            sup.start_group(service)
        else:
            sup.start(service)
        if service in SERVICES:
            timeout = self.settings.start_timeout_s
            missing = asyncio.run(_wait_services_ready(info, {service}, timeout, since=started_after))
            if missing:
                raise StackError(f"{service} did not report ready within {timeout:.0f}s; "
                                 f"see {self.home / 'logs' / (service + '.log')}")

    def log_file(self, service: str) -> Path:
        path = self.home / "logs" / f"{service}.log"
        if not path.exists():
            known = sorted(p.stem for p in (self.home / "logs").glob("*.log"))
            raise StackError(f"no log for {service!r}; logs: {', '.join(known) or 'none yet'}")
        return path


async def _wait_services_ready(info: StackInfo, services: set[str], timeout: float,
                               since: float | None = None) -> set[str]:
    """Wait for each service's ``svc.started`` (recorded once it accepts work) at or after
    ``since`` (epoch seconds); return the services still missing at the deadline."""
    bus = await Bus.connect(BusSettings(nats_url=info.nats_url), source="oplab-up")
    await bus.ensure_stream(update=True)  # the launcher owns the stream's limits
    seen: set[str] = set()
    all_ready = asyncio.Event()

    async def handle(d: Delivered) -> None:
        if isinstance(d.event.data, ServiceStarted) and (since is None or d.event.time.timestamp() >= since):
            seen.add(d.event.data.service)
            if services <= seen:
                all_ready.set()

    replay = await bus.replay(run_type(info.run, ServiceStarted), handle, follow=True)
    try:
        await asyncio.wait_for(all_ready.wait(), timeout)
    except TimeoutError:
        pass
    finally:
        await replay.stop()
        await bus.close()
    return services - seen


def _port(url: str) -> int:
    port = urlparse(url).port
    if port is None:
        raise StackError(f"no port in {redacted(url)}")
    return port


def redacted(url: str) -> str:
    """``url`` without its password, for printing."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return parsed._replace(netloc=netloc).geturl()


def _listening(url: str) -> bool:
    host = urlparse(url).hostname or "127.0.0.1"
    try:
        with socket.create_connection((host, _port(url)), 0.25):
            return True
    except OSError:
        return False


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=0.5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _wait(check: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise StackError(message)
        time.sleep(0.05)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

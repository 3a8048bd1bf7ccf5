"""The local stack: embedded NATS + the subject's processes + services under supervisord.

``up`` loads the run's subject (``--subject`` / ``OPLAB_SUBJECT``), asks its
provisioner for a deployment (the local processes it needs, with health checks,
and the environment every process gets; none for an external deployment),
picks free ports on 127.0.0.1, writes ``<home>/supervisord.conf`` and
``<home>/stack.json``, starts supervisord, then starts programs in order,
waiting for each layer to be ready (NATS listening, each stage of the subject's
processes healthy, every service's ``svc.started``) before the next. ``down``
asks supervisord to stop everything (services get SIGTERM and shut down
cleanly, in reverse order) and waits for it to exit.

Each ``up`` is a new run (a new run id) of one subject; every process of the
run gets ``OPLAB_RUN`` and ``OPLAB_SUBJECT``. The NATS store under
``<home>/nats`` keeps every run for replay.

A subject that deploys as a compose project (:mod:`oplab.compose`) runs there
instead, lab and all: ``up`` brings the project's profile up with the run's id
and a free port of 127.0.0.1 for its NATS, and waits for the same
``svc.started`` events; ``down``, ``status`` and ``restart`` act on the
project. Its NATS volume keeps those runs.
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
from typing import Any
from urllib.parse import urlparse

import nats.errors
from pydantic import ValidationError

from events import ServiceStarted, new_run_id
from events.bus import Bus, Delivered
from events.commands import request
from events.settings import BusSettings
from events.subjects import run_type
from oplab.compose import Compose, ComposeFailed, ComposeRun
from oplab.infra import free_port, nats_command
from oplab.nats_auth import ADMIN, ClusterNode, LabCredentials, write_private
from oplab.reader_server import stop_reader_servers
from oplab.settings import LabSettings
from oplab.supervisor import SERVICES, Program, Supervisor, render_config, supervisord_binary
from subjects.contract import ComposeProject, Deployment, HealthCheck, LocalProcess, Site
from subjects.registry import UnknownSubject, load_subject

log = logging.getLogger(__name__)
NATS_CLUSTER = ("nats-1", "nats-2", "nats-3")
"""The embedded cluster's servers (``OPLAB_NATS_CLUSTER=3``)."""
REVERT_TIMEOUT_S = 15.0
"""How long `oplab down` gives the chaos service to revert every fault (NATS connect, then revert)."""


class StackError(RuntimeError):
    """The stack could not be started or reached; the message says what to do."""


@dataclass
class StackInfo:
    """What ``up`` started, saved in ``<home>/stack.json`` (owner-only: it holds credentials)."""

    run: str
    subject: str
    nats_url: str
    supervisor_url: str
    fault: str
    mode: str
    embedded_nats: bool
    started_at: float
    subject_env: dict[str, str]
    """The environment the subject's provisioner gave every process of the run."""
    endpoints: dict[str, str]
    compose: dict[str, Any] | None = None
    """For a run under Docker Compose: :attr:`ComposeRun.saved` (no supervisord then)."""
    approval: str | None = None
    """The agents' approval mode the run was started with (``manual``: the console decides, so it
    connects as the ``operator`` user, who may write the decision)."""
    command_scope: str | None = None
    """The scope its chaos and director answer commands in (a campaign's parallel trial slot, see
    :func:`events.subjects.command`); None: unscoped, the lab's one instance."""

    def save(self, path: Path) -> None:
        # holds the supervisor's credentials (and a compose run's NATS passwords): owner-only from the start
        write_private(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> StackInfo | None:
        """The saved stack, or None (no file, or one written by another version of the lab)."""
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None


def saved_url(path: Path, key: str) -> str | None:
    """``supervisor_url`` or ``nats_url`` from a stack file of any version of the lab (enough to
    reach or bring down a stack an older ``oplab`` started)."""
    try:
        url = json.loads(path.read_text()).get(key)
    except (FileNotFoundError, ValueError, AttributeError):
        return None
    return url if isinstance(url, str) else None


Progress = Callable[[str], None]
CHILD_STACKS = "slots"
"""``<home>/slots/<name>/``: stacks started beside this one on its NATS (a campaign's parallel trial
slots, each with a supervisord of its own); :meth:`Stack.down` takes them down with it."""


class Stack:
    def __init__(self, settings: LabSettings | None = None) -> None:
        self.settings = settings or LabSettings()
        self.home = self.settings.home.resolve()

    # -- inspection -------------------------------------------------------------

    def info(self) -> StackInfo | None:
        return StackInfo.load(self.home / "stack.json")

    def supervisor(self) -> Supervisor | None:
        """The running stack's supervisor (of any lab version), or None."""
        url = saved_url(self.home / "stack.json", "supervisor_url")
        if url is None:
            return None
        sup = Supervisor(url)
        return sup if sup.alive() else None

    def compose(self) -> Compose | None:
        """The running stack's compose project (a run under Docker Compose), or None."""
        info = self.info()
        if info is None or info.compose is None:
            return None
        compose = Compose(ComposeRun.from_saved(info.compose))
        return compose if compose.running() else None

    def running(self) -> bool:
        return self.supervisor() is not None or self.compose() is not None

    def require(self) -> StackInfo:
        """The running stack's description; a clear error when none runs."""
        info, running = self.info(), self.running()
        if running and info is None:
            raise StackError("the running stack was started by another version of the lab: "
                             "`oplab down`, then `oplab up` again")
        if info is None or not running:
            raise StackError("no stack is running here: start one with `oplab up` (or `oplab demo`)")
        return info

    def processes(self, info: StackInfo) -> list[dict[str, Any]]:
        """Each program of the running stack: name, group, state, pid, description."""
        if info.compose is not None:
            return [{"name": row.get("Service", "?"), "group": row.get("Service", "?"),
                     "state": str(row.get("State", "?")).upper(), "pid": None,
                     "description": row.get("Status", "")}
                    for row in Compose(ComposeRun.from_saved(info.compose)).containers()]
        sup = self.supervisor()
        if sup is None:
            raise StackError("supervisord of the running stack does not answer: `oplab down`, then `oplab up`")
        return [{"name": p["name"], "group": p["group"], "state": p["statename"], "pid": p["pid"],
                 "description": p["description"]} for p in sup.processes()]

    def nats_url(self, info: StackInfo, role: str) -> str:
        """The run's NATS URL for ``role`` (see :mod:`oplab.nats_auth`): with that role's user
        where the lab runs its own NATS (embedded, or its compose project's), as given where it
        does not (an external NATS)."""
        ours = info.embedded_nats or info.compose is not None
        credentials = LabCredentials.load(self.home) if ours else None
        return info.nats_url if credentials is None else credentials.url(info.nats_url, role)

    def service_env(self, info: StackInfo) -> dict[str, str]:
        """The environment every child process gets: the run, the lab's endpoints, the subject's."""
        env = {
            **info.subject_env,
            "OPLAB_RUN": info.run,
            "OPLAB_SUBJECT": info.subject,
            "NATS_URL": info.nats_url,
            "OPLAB_HOME": str(self.home),
            "OPLAB_FAULT": info.fault,
            "OPLAB_DIRECTOR_MODE": info.mode,
            "PYTHONUNBUFFERED": "1",
        }
        if info.command_scope:
            env["OPLAB_COMMAND_SCOPE"] = info.command_scope
        if self.settings.scenario:
            env["OPLAB_SCENARIO"] = self.settings.scenario
        if self.settings.approval:
            env["OPLAB_APPROVAL"] = self.settings.approval
        if info.embedded_nats:  # a copy of the stream on every server of our cluster
            env["OPLAB_STREAM_REPLICAS"] = str(_replicas(info))
        return env

    # -- up / down ----------------------------------------------------------------

    def up(self, *, fault: str, mode: str, subject: str | None = None,
           progress: Progress = lambda _: None) -> StackInfo:
        """Start a new run of ``subject`` (default: ``OPLAB_SUBJECT``, else the default subject)."""
        if self.running():
            info = self.info()
            raise StackError(f"a stack is already running here (run {info.run if info else '?'}): "
                             "`oplab down` first")
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        info, deployment = self._plan(subject or self.settings.subject, fault, mode)
        if deployment.compose is not None:
            return self._up_compose(info, deployment.compose, progress)
        if info.embedded_nats:  # our NATS: every process gets its own user (see oplab.nats_auth)
            self._stop_reader_servers(progress)  # one server per store: a reader's must go first
            LabCredentials.create(self.home)
        programs = self._programs(info, deployment)
        # the programs' environments hold their NATS passwords: owner-only from the first byte
        write_private(self.home / "supervisord.conf", render_config(self.home, info.supervisor_url, programs))
        conf = self.home / "supervisord.conf"
        info.save(self.home / "stack.json")
        progress(f"run {info.run}: starting supervisord")
        subprocess.run([supervisord_binary(), "-c", str(conf)], check=True, env=self._child_env(info))
        sup = Supervisor(info.supervisor_url)
        _wait(lambda: sup.alive(), self.settings.start_timeout_s, "supervisord did not come up")
        try:
            self._start_all(info, deployment, sup, progress)
        except Exception:
            progress("start failed: stopping what was started")
            self.down()
            raise
        return info

    def _up_compose(self, info: StackInfo, project: ComposeProject, progress: Progress) -> StackInfo:
        """The run as the compose project's profile; on any failure, nothing of it left running."""
        port = free_port()
        credentials = LabCredentials.create(self.home)  # the project's NATS gets these users
        run = ComposeRun.plan(project, run=info.run, nats_port=port, fault=info.fault, mode=info.mode,
                              nats_auth=credentials.to_json())
        info.nats_url, info.embedded_nats, info.supervisor_url = f"nats://127.0.0.1:{port}", False, ""
        info.compose = run.saved
        compose = Compose(run)
        info.endpoints["compose"] = compose.describe().removeprefix("the compose project ")
        try:
            compose.check()
            compose.pull(progress)
        except ComposeFailed as exc:
            raise StackError(str(exc)) from None
        info.save(self.home / "stack.json")
        try:
            compose.up(progress)
            _wait(lambda: _listening(info.nats_url), self.settings.start_timeout_s,
                  f"the compose project's NATS is not published at {info.nats_url}")
            progress("waiting for every service to report ready")
            timeout = self.settings.start_timeout_s
            missing = self._services_ready(info, set(SERVICES), timeout)
            if missing:
                raise StackError(f"not ready within {timeout:.0f}s: {', '.join(sorted(missing))}; "
                                 f"see `docker compose -f {project.file} --profile {project.profile} logs`")
        except BaseException as exc:  # a failure or Ctrl-C: nothing of the run left running
            progress("start failed: bringing the compose project down")
            with contextlib.suppress(ComposeFailed):
                compose.down(progress)
            if isinstance(exc, ComposeFailed | StackError):
                raise StackError(str(exc)) from None
            raise
        return info

    def _plan(self, subject_name: str, fault: str, mode: str) -> tuple[StackInfo, Deployment]:
        try:
            subject = load_subject(subject_name)
        except UnknownSubject as exc:
            raise StackError(str(exc)) from None
        run = new_run_id()
        nats_url = self.settings.nats_url or ",".join(
            f"nats://127.0.0.1:{free_port()}" for _ in range(self.settings.nats_cluster))
        supervisor_url = f"http://lab:{secrets.token_urlsafe(16)}@127.0.0.1:{free_port()}"
        site = Site(run=run, home=self.home, python=sys.executable, supervisor_url=supervisor_url,
                    free_port=free_port)
        try:
            deployment = subject.provisioner().plan(site)
        except ValueError as exc:  # a bad configuration, pydantic's ValidationError of its settings included
            raise StackError(f"subject {subject.name} cannot be deployed: {_reason(exc)}") from None
        except Exception as exc:  # a plug-in's bug must not leave the user with a traceback
            log.exception("provisioner of subject %s failed", subject.name)
            raise StackError(f"subject {subject.name}'s provisioner failed: {type(exc).__name__}: {exc}") from None
        names = [p.name for p in deployment.processes]
        clash = (sorted({*names} & {"nats", *NATS_CLUSTER, *SERVICES})
                 or sorted({n for n in names if names.count(n) > 1}))
        if clash:
            raise StackError(f"subject {subject.name} declares processes named {', '.join(clash)}, "
                             "which the lab's own programs (or each other) use")
        info = StackInfo(run=run, subject=subject.name, nats_url=nats_url, supervisor_url=supervisor_url,
                         fault=fault, mode=mode, embedded_nats=self.settings.nats_url is None,
                         started_at=time.time(), subject_env=dict(deployment.env),
                         endpoints=dict(deployment.endpoints), approval=self.settings.approval)
        return info, deployment

    def _child_env(self, info: StackInfo) -> dict[str, str]:
        return {**os.environ, **self.service_env(info)}

    def _programs(self, info: StackInfo, deployment: Deployment) -> list[Program]:
        py = sys.executable
        programs: list[Program] = []
        credentials = LabCredentials.load(self.home) if info.embedded_nats else None
        if info.embedded_nats:
            programs += self._nats_programs(info, credentials)
        for process in deployment.processes:
            programs.append(Program(process.name, process.command, priority=20 + process.stage,
                                    autorestart="true" if process.restart_on_crash else "false"))
        for priority, service in enumerate(SERVICES, start=50):
            numprocs = self.settings.agents if service == "agent" else 1
            env = {} if credentials is None else {"OPLAB_NATS_USER": service,
                                                   "OPLAB_NATS_PASSWORD": credentials.passwords[service]}
            programs.append(Program(service, [py, "-m", f"services.{service}"], priority=priority,
                                    numprocs=numprocs, environment=env))
        return programs

    def _nats_programs(self, info: StackInfo, credentials: LabCredentials | None) -> list[Program]:
        """The embedded NATS: one server (``nats``), or a cluster of three (``nats-1``..``nats-3``,
        routes between them, each with its own store) - always with the lab's users when there are."""
        ports = [_port(url) for url in info.nats_url.split(",")]
        if len(ports) == 1:
            config = None
            if credentials is not None:
                config = credentials.write_server_config(self.home / "nats.conf", ports[0], self.home / "nats" / "js")
            return [Program("nats", nats_command(self.home / "nats", ports[0], config=config), priority=10,
                            autorestart="true")]
        if credentials is None:
            raise StackError("a NATS cluster needs the lab's users (it is started by `oplab up` only)")
        route_ports = [free_port() for _ in ports]
        routes = tuple(f"127.0.0.1:{p}" for p in route_ports)
        programs = []
        for name, port, route_port in zip(NATS_CLUSTER, ports, route_ports, strict=True):
            store = self.home / name
            config = credentials.write_server_config(self.home / f"{name}.conf", port, store / "js",
                                                     cluster=ClusterNode(name, route_port, routes))
            programs.append(Program(name, nats_command(store, port, config=config), priority=10, autorestart="true"))
        return programs

    def _start_all(self, info: StackInfo, deployment: Deployment, sup: Supervisor, progress: Progress) -> None:
        timeout = self.settings.start_timeout_s
        if info.embedded_nats:
            servers = info.nats_url.split(",")
            progress(f"starting nats-server on {info.nats_url}" if len(servers) == 1 else
                     f"starting a NATS cluster of {len(servers)} servers on {info.nats_url}")
            for name in ["nats"] if len(servers) == 1 else NATS_CLUSTER[:len(servers)]:
                sup.start(name)
        for url in info.nats_url.split(","):
            _wait(lambda url=url: _listening(url), timeout, f"NATS at {redacted(url)} is not reachable")
        if info.embedded_nats:  # a cluster elects its JetStream leader after listening: the stream waits for it
            progress("creating the event stream")
            asyncio.run(_create_stream(self.nats_url(info, ADMIN), _replicas(info), timeout))
        if deployment.external:
            progress(f"{info.subject} runs elsewhere: "
                     + (", ".join(f"{k} {redacted(v)}" for k, v in info.endpoints.items()) or "no endpoints given"))
        for stage in deployment.stages():
            for process in stage:
                progress(f"starting {process.name}" + (f" ({_where(process)})" if process.health else ""))
                sup.start(process.name)
            for process in stage:
                if process.health is not None:
                    _wait(lambda h=process.health: _healthy(h), timeout,
                          f"{process.name} did not become ready ({redacted(process.health.url)}); "
                          f"see {self.home / 'logs' / (process.name + '.log')}")
        for service in SERVICES:
            progress(f"starting {service}")
            if service == "agent" and self.settings.agents > 1:
                sup.start_group(service)
            else:
                sup.start(service)
        progress("waiting for every service to report ready")
        missing = self._services_ready(info, set(SERVICES), timeout)
        if missing:
            raise StackError(f"not ready within {timeout:.0f}s: {', '.join(sorted(missing))}; "
                             f"see {self.home / 'logs'}")

    def down(self, progress: Progress = lambda _: None) -> bool:
        """Revert every fault, then stop everything; True if something was running.

        The revert comes first because stopping the chaos service alone reverts nothing
        (it hands its faults over to the next one): the lab going down must leave no
        fault behind. Child stacks (:data:`CHILD_STACKS`) go first: they use this stack's NATS."""
        children = [child.down(progress) for child in self.children()]
        compose = self.compose()
        if compose is not None or self.supervisor() is not None:
            self._revert_faults(progress)
        if compose is not None:
            try:
                compose.down(progress)
            except ComposeFailed as exc:
                raise StackError(f"docker compose down failed: {exc}") from None
            return True
        sup = self.supervisor()
        if sup is None:
            return self._stop_reader_servers(progress) or any(children)
        progress("stopping services (SIGTERM, each finishes its work) and infrastructure: a few seconds")
        pid = _read_pid(self.home / "supervisord.pid")
        with contextlib.suppress(OSError):
            sup.shutdown()
        if pid is not None:
            _wait(lambda: not _pid_alive(pid), 60.0, "supervisord did not exit")
        self._stop_reader_servers(progress)
        return True

    def children(self) -> list[Stack]:
        """The child stacks in ``<home>/slots/`` that are still up."""
        homes = sorted(path.parent for path in (self.home / CHILD_STACKS).glob("*/stack.json"))
        return [child for child in (Stack(self.settings.model_copy(update={"home": home})) for home in homes)
                if child.supervisor() is not None]

    def _stop_reader_servers(self, progress: Progress) -> bool:
        """Stop the nats-server readers of the stopped lab's log started on its store (see
        :mod:`oplab.reader_server`); True if there was one."""
        stopped = stop_reader_servers(self.home)
        if stopped:
            progress(f"stopped the nats-server reading the lab's store for `oplab events`/`console` "
                     f"({stopped} process{'es' if stopped > 1 else ''})")
        return stopped > 0

    def _services_ready(self, info: StackInfo, services: set[str], timeout: float,
                        since: float | None = None) -> set[str]:
        """Wait for the services' ``svc.started``; the ones still missing at the deadline."""
        return asyncio.run(_wait_services_ready(info.run, self.nats_url(info, ADMIN), _replicas(info), services,
                                                timeout, since=since))

    def _revert_faults(self, progress: Progress) -> None:
        info = self.info()
        if info is None:
            return  # a stack an older lab started: its chaos service reverts on SIGTERM
        progress("reverting active faults")
        try:
            result = asyncio.run(_revert_all(self.nats_url(info, "operator"), REVERT_TIMEOUT_S, info.command_scope))
        except Exception as exc:  # best effort: the subject's processes stop with the lab anyway
            progress(f"could not revert the faults ({exc}); stopping anyway")
            return
        if result["reverted"] or result["failed"]:
            progress(f"reverted {len(result['reverted'])} fault(s)"
                     + (f"; failed: {', '.join(result['failed'])}" if result["failed"] else ""))

    def restart(self, service: str) -> None:
        """Stop (SIGTERM) and start one program; for a service, wait until it reports ready."""
        info = self.require()
        if info.compose is not None:
            return self._restart_compose(info, service)
        sup = self.supervisor()
        assert sup is not None  # require() saw it answer
        names = {p["group"] for p in sup.processes()}
        if service not in names:
            raise StackError(f"unknown service {service!r}; running: {', '.join(sorted(names))}")
        started_after = time.time()
        for proc in sup.processes():
            if proc["group"] == service and proc["statename"] in ("RUNNING", "STARTING", "BACKOFF"):
                sup.stop(f"{proc['group']}:{proc['name']}")
        if service == "agent" and self.settings.agents > 1:
            sup.start_group(service)
        else:
            sup.ensure_started(service)
        if service in SERVICES:
            timeout = self.settings.start_timeout_s
            missing = self._services_ready(info, {service}, timeout, since=started_after)
            if missing:
                raise StackError(f"{service} did not report ready within {timeout:.0f}s; "
                                 f"see {self.home / 'logs' / (service + '.log')}")

    def _restart_compose(self, info: StackInfo, service: str) -> None:
        """``docker compose restart`` of one compose service; a lab service (``monitor``, or the
        profile's ``tikv-monitor``) is waited on until it reports ready."""
        assert info.compose is not None
        compose = Compose(ComposeRun.from_saved(info.compose))
        names = {row.get("Service") for row in compose.containers()}
        profile = info.compose["variables"].get("COMPOSE_PROFILES", "")
        name = service if service in names else f"{profile}-{service}"
        if name not in names:
            raise StackError(f"unknown service {service!r}; running: {', '.join(sorted(str(n) for n in names))}")
        started_after = time.time()
        try:
            compose.restart(name)
        except ComposeFailed as exc:
            raise StackError(f"docker compose restart {name} failed: {exc}") from None
        lab_service = name.removeprefix(f"{profile}-")
        if lab_service in SERVICES:
            timeout = self.settings.start_timeout_s
            missing = self._services_ready(info, {lab_service}, timeout, since=started_after)
            if missing:
                raise StackError(f"{name} did not report ready within {timeout:.0f}s: `docker compose logs {name}`")

    def log_file(self, service: str) -> Path:
        path = self.home / "logs" / f"{service}.log"
        if not path.exists():
            known = sorted(p.stem for p in (self.home / "logs").glob("*.log"))
            raise StackError(f"no log for {service!r}; logs: {', '.join(known) or 'none yet'}")
        return path


async def _revert_all(nats_url: str, timeout: float, scope: str | None = None) -> dict[str, Any]:
    """Ask the chaos service (of lab ``scope``) to revert every fault, as the lab goes down."""
    bus = await asyncio.wait_for(Bus.connect(BusSettings(nats_url=nats_url), source="oplab", ensure_stream=False),
                                 timeout)  # a connect to nothing retries for ever
    try:
        return await request(bus.nc, "chaos", "revert", {"all": True, "reason": "shutdown"}, timeout=timeout,
                             scope=scope)
    finally:
        await bus.close()


async def _create_stream(nats_url: str, replicas: int, timeout: float) -> None:
    """Create (or update) the lab's stream as soon as JetStream answers; StackError at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    bus = await Bus.connect(BusSettings(nats_url=nats_url, stream_replicas=replicas), source="oplab-up",
                            ensure_stream=False)
    try:
        while True:
            try:
                await bus.ensure_stream(update=True)
                return
            except (nats.errors.Error, TimeoutError) as exc:  # no JetStream leader yet
                if loop.time() > deadline:
                    raise StackError(f"NATS JetStream did not become available within {timeout:.0f}s: {exc!r}; "
                                     "see the nats logs") from None
            await asyncio.sleep(0.25)  # the cluster is electing its leader: look again shortly
    finally:
        await bus.close()


def _replicas(info: StackInfo) -> int:
    """Copies of the stream: one per server of the lab's own cluster; an external NATS keeps its own."""
    return len(info.nats_url.split(",")) if info.embedded_nats else 1


async def _wait_services_ready(run: str, nats_url: str, replicas: int, services: set[str], timeout: float,
                               since: float | None = None) -> set[str]:
    """Wait for each service's ``svc.started`` (recorded once it accepts work) at or after
    ``since`` (epoch seconds); return the services still missing at the deadline."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url, stream_replicas=replicas), source="oplab-up")
    await bus.ensure_stream(update=True)  # the launcher owns the stream's limits
    seen: set[str] = set()
    all_ready = asyncio.Event()

    async def handle(d: Delivered) -> None:
        if isinstance(d.event.data, ServiceStarted) and (since is None or d.event.time.timestamp() >= since):
            seen.add(d.event.data.service)
            if services <= seen:
                all_ready.set()

    replay = await bus.replay(run_type(run, ServiceStarted), handle, follow=True)
    try:
        await asyncio.wait_for(all_ready.wait(), timeout)
    except TimeoutError:
        pass
    finally:
        await replay.stop()
        await bus.close()
    return services - seen


def _reason(exc: ValueError) -> str:
    """One line saying what is wrong (a pydantic error: each field and its message)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
    return str(exc)


def _port(url: str) -> int:
    port = urlparse(url).port
    if port is None:
        raise StackError(f"no port in {redacted(url)}")
    return port


def redacted(url: str) -> str:
    """``url`` (one, or a cluster's comma-separated) without its passwords, for printing."""
    if "," in url:
        return ",".join(redacted(one.strip()) for one in url.split(","))
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


def _healthy(check: HealthCheck) -> bool:
    """A TCP connect succeeds (``tcp://``) or a GET answers 200 (``http(s)://``)."""
    if check.url.startswith("tcp://"):
        return _listening(check.url)
    try:
        with urllib.request.urlopen(check.url, timeout=0.5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _where(process: LocalProcess) -> str:
    assert process.health is not None
    parsed = urlparse(process.health.url)
    return f"{parsed.hostname}:{parsed.port}" if parsed.port else redacted(process.health.url)


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

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

What ``up`` starts is planned in :mod:`oplab.stack_plan`; the stack file is
:mod:`oplab.stack_info` (:class:`StackInfo` and :class:`StackError` are importable from here too);
the probes it waits on are :mod:`oplab.probes`, and what it asks of the bus :mod:`oplab.lab_bus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from oplab import reader_server
from oplab.compose import Compose, ComposeFailed, ComposeRun
from oplab.infra import free_port
from oplab.lab_bus import create_stream, revert_all, wait_services_ready
from oplab.nats_auth import ADMIN, LabCredentials, write_private
from oplab.probes import healthy, listening, pid_alive, read_pid, redacted, wait_for
from oplab.settings import LabSettings
from oplab.stack_info import StackError, StackInfo, saved_url
from oplab.stack_plan import NATS_CLUSTER, plan_run, supervisor_programs
from oplab.supervisor import SERVICES, Supervisor, SupervisorError, render_config, supervisord_binary
from subjects.contract import ComposeProject, Deployment, LocalProcess

__all__ = ["CHILD_STACKS", "Progress", "Stack", "StackError", "StackInfo"]
REVERT_TIMEOUT_S = 15.0
"""How long `oplab down` gives the chaos service to revert every fault (NATS connect, then revert)."""
Progress = Callable[[str], None]
CHILD_STACKS = "slots"
"""``<home>/slots/<name>/``: stacks started beside this one on its NATS (a campaign's parallel trial
slots, each with a supervisord of its own); :meth:`Stack.down` takes them down with it."""


class Stack:
    """The lab in ``settings.home``: start a run (:meth:`up`), inspect it, restart one of its programs,
    take it down with its faults reverted (:meth:`down`). Everything it knows of a running stack comes
    from the stack file and supervisord (or the compose project), so any ``oplab`` process can act on it."""

    def __init__(self, settings: LabSettings | None = None) -> None:
        self.settings = settings or LabSettings()
        self.home = self.settings.home.resolve()

    # -- inspection -------------------------------------------------------------

    def info(self) -> StackInfo | None:
        return StackInfo.load(self.settings.stack_file)

    def supervisor(self) -> Supervisor | None:
        """The running stack's supervisor (of any lab version), or None when none answers at the saved
        URL. A supervisord that accepts the connection but does not answer within
        ``OPLAB_SUPERVISOR_TIMEOUT_S`` is neither: :class:`StackError` says so (rather than a hang, or
        a stack taken for stopped while its supervisord still holds the programs)."""
        url = saved_url(self.settings.stack_file, "supervisor_url")
        if url is None:
            return None
        sup = Supervisor(url, self.settings.supervisor_timeout_s)
        try:
            return sup if sup.alive() else None
        except SupervisorError as exc:
            raise StackError(f"{exc}; if it stays so, stop it (its pid is in {self.home / 'supervisord.pid'}) "
                             "and run `oplab down`") from None

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
            env["OPLAB_STREAM_REPLICAS"] = str(info.stream_replicas)
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
        info, deployment = plan_run(self.settings, self.home, subject or self.settings.subject, fault, mode)
        if deployment.compose is not None:
            return self._up_compose(info, deployment.compose, progress)
        if info.embedded_nats:  # our NATS: every process gets its own user (see oplab.nats_auth)
            self.stop_reader_servers(progress)  # one server per store: a reader's must go first
            LabCredentials.create(self.home)
        programs = supervisor_programs(self.settings, self.home, info, deployment)
        # the programs' environments hold their NATS passwords: owner-only from the first byte
        write_private(self.home / "supervisord.conf", render_config(self.home, info.supervisor_url, programs))
        conf = self.home / "supervisord.conf"
        info.save(self.settings.stack_file)
        progress(f"run {info.run}: starting supervisord")
        subprocess.run([supervisord_binary(), "-c", str(conf)], check=True, env=self._child_env(info))
        sup = Supervisor(info.supervisor_url, self.settings.supervisor_timeout_s)
        wait_for(lambda: sup.alive(), self.settings.start_timeout_s, "supervisord did not come up")
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
        info.save(self.settings.stack_file)
        try:
            compose.up(progress)
            wait_for(lambda: listening(info.nats_url), self.settings.start_timeout_s,
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

    def _child_env(self, info: StackInfo) -> dict[str, str]:
        return {**os.environ, **self.service_env(info)}

    def _start_all(self, info: StackInfo, deployment: Deployment, sup: Supervisor, progress: Progress) -> None:
        timeout = self.settings.start_timeout_s
        if info.embedded_nats:
            servers = info.nats_url.split(",")
            progress(f"starting nats-server on {info.nats_url}" if len(servers) == 1 else
                     f"starting a NATS cluster of {len(servers)} servers on {info.nats_url}")
            for name in ["nats"] if len(servers) == 1 else NATS_CLUSTER[:len(servers)]:
                sup.start(name)
        for url in info.nats_url.split(","):
            wait_for(lambda url=url: listening(url), timeout, f"NATS at {redacted(url)} is not reachable")
        if info.embedded_nats:  # a cluster elects its JetStream leader after listening: the stream waits for it
            progress("creating the event stream")
            asyncio.run(create_stream(self.nats_url(info, ADMIN), info.stream_replicas, timeout))
        if deployment.external:
            progress(f"{info.subject} runs elsewhere: "
                     + (", ".join(f"{k} {redacted(v)}" for k, v in info.endpoints.items()) or "no endpoints given"))
        for stage in deployment.stages():
            for process in stage:
                progress(f"starting {process.name}" + (f" ({_where(process)})" if process.health else ""))
                sup.start(process.name)
            for process in stage:
                if process.health is not None:
                    wait_for(lambda h=process.health: healthy(h), timeout,
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
        children, failures = [], []
        for child in self.children():  # one that will not come down must not keep the rest up
            try:
                children.append(child.down(progress))
            except (StackError, SupervisorError) as exc:
                progress(f"{child.home}: {exc}")
                failures.append(f"{child.home.name}: {exc}")
        went_down = self._down_self(progress) or any(children)
        if failures:
            raise StackError(f"{len(failures)} child stack(s) did not come down: {'; '.join(failures)}")
        return went_down

    def _down_self(self, progress: Progress) -> bool:
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
            return self.stop_reader_servers(progress)
        progress("stopping services (SIGTERM, each finishes its work) and infrastructure: a few seconds")
        pid = read_pid(self.home / "supervisord.pid")
        with contextlib.suppress(SupervisorError):  # it may close the connection as it goes
            sup.shutdown()
        if pid is not None:
            wait_for(lambda: not pid_alive(pid), 60.0, "supervisord did not exit")
        self.stop_reader_servers(progress)
        return True

    def children(self) -> list[Stack]:
        """The child stacks in ``<home>/slots/`` that are still up."""
        homes = sorted(path.parent for path in (self.home / CHILD_STACKS).glob(f"*/{self.settings.stack_file.name}"))
        return [child for child in (Stack(self.settings.model_copy(update={"home": home})) for home in homes)
                if child._up_or_hung()]

    def _up_or_hung(self) -> bool:
        try:
            return self.supervisor() is not None
        except StackError:  # its supervisord hangs: still there, for `down` to report
            return True

    def stop_reader_servers(self, progress: Progress) -> bool:
        """Stop the nats-server readers of the stopped lab's log started on its store (see
        :mod:`oplab.reader_server`); True if there was one. One server per store: the lab's own NATS
        (``up``, a campaign's lab) starts on it only after this."""
        stopped = reader_server.stop_reader_servers(self.home)
        if stopped:
            progress(f"stopped the nats-server reading the lab's store for `oplab events`/`console` "
                     f"({stopped} process{'es' if stopped > 1 else ''})")
        return stopped > 0

    def _services_ready(self, info: StackInfo, services: set[str], timeout: float,
                        since: float | None = None) -> set[str]:
        """Wait for the services' ``svc.started``; the ones still missing at the deadline."""
        return asyncio.run(wait_services_ready(info.run, self.nats_url(info, ADMIN), info.stream_replicas, services,
                                               timeout, since=since))

    def _revert_faults(self, progress: Progress) -> None:
        info = self.info()
        if info is None:
            return  # a stack an older lab started: its chaos service reverts on SIGTERM
        progress("reverting active faults")
        try:
            result = asyncio.run(revert_all(self.nats_url(info, "operator"), REVERT_TIMEOUT_S, info.command_scope))
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


def _where(process: LocalProcess) -> str:
    """Where a process with a health check answers (``host:port``), for the progress line."""
    assert process.health is not None
    parsed = urlparse(process.health.url)
    return f"{parsed.hostname}:{parsed.port}" if parsed.port else redacted(process.health.url)

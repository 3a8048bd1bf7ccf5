"""What ``oplab up`` will start, decided before anything starts.

:func:`plan_run` loads the subject, asks its provisioner for a deployment on free ports of
127.0.0.1 and describes the new run (:class:`~oplab.stack_info.StackInfo`); :func:`supervisor_programs`
turns both into supervisord's programs: the embedded NATS (:func:`nats_programs`, also the campaign
lab's), the subject's processes, then the lab's services. A subject whose provisioner fails or
plans a process under a name the lab's own programs use is refused here, with the reason.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from events import new_run_id
from oplab.infra import free_port, nats_command
from oplab.nats_auth import ClusterNode, LabCredentials
from oplab.probes import port_of
from oplab.settings import LabSettings
from oplab.stack_info import StackError, StackInfo
from oplab.supervisor import SERVICES, Program
from subjects.contract import Deployment, Site
from subjects.registry import UnknownSubject, load_subject

log = logging.getLogger(__name__)
NATS_CLUSTER = ("nats-1", "nats-2", "nats-3")
"""The embedded cluster's servers (``OPLAB_NATS_CLUSTER=3``)."""


def plan_run(settings: LabSettings, home: Path, subject_name: str, fault: str,
             mode: str) -> tuple[StackInfo, Deployment]:
    """A new run of ``subject_name`` in ``home``: its description and the subject's deployment.
    Nothing is started or written; StackError says why the subject cannot be deployed."""
    try:
        subject = load_subject(subject_name)
    except UnknownSubject as exc:
        raise StackError(str(exc)) from None
    run = new_run_id()
    nats_url = settings.nats_url or ",".join(
        f"nats://127.0.0.1:{free_port()}" for _ in range(settings.nats_cluster))
    supervisor_url = f"http://lab:{secrets.token_urlsafe(16)}@127.0.0.1:{free_port()}"
    site = Site(run=run, home=home, python=sys.executable, supervisor_url=supervisor_url, free_port=free_port)
    try:
        deployment = subject.provisioner().plan(site)
    except ValueError as exc:  # a bad configuration, pydantic's ValidationError of its settings included
        raise StackError(f"subject {subject.name} cannot be deployed: {_reason(exc)}") from None
    except Exception as exc:  # a plug-in's bug must not leave the user with a traceback
        log.exception("provisioner failed", extra={"subject": subject.name})
        raise StackError(f"subject {subject.name}'s provisioner failed: {type(exc).__name__}: {exc}") from None
    names = [p.name for p in deployment.processes]
    clash = (sorted({*names} & {"nats", *NATS_CLUSTER, *SERVICES})
             or sorted({n for n in names if names.count(n) > 1}))
    if clash:
        raise StackError(f"subject {subject.name} declares processes named {', '.join(clash)}, "
                         "which the lab's own programs (or each other) use")
    info = StackInfo(run=run, subject=subject.name, nats_url=nats_url, supervisor_url=supervisor_url,
                     fault=fault, mode=mode, embedded_nats=settings.nats_url is None,
                     started_at=time.time(), subject_env=dict(deployment.env),
                     endpoints=dict(deployment.endpoints), approval=settings.approval)
    return info, deployment


def supervisor_programs(settings: LabSettings, home: Path, info: StackInfo, deployment: Deployment) -> list[Program]:
    """supervisord's programs for the run: NATS if the lab runs its own (with the users of
    ``<home>/nats-auth.json``, which must exist by then), the subject's processes, the services
    (``OPLAB_AGENTS`` agents), each service as its own NATS user."""
    programs: list[Program] = []
    credentials = LabCredentials.load(home) if info.embedded_nats else None
    if info.embedded_nats:
        programs += nats_programs(home, info.nats_url, credentials)
    for process in deployment.processes:
        programs.append(Program(process.name, process.command, priority=20 + process.stage,
                                autorestart="true" if process.restart_on_crash else "false"))
    for priority, service in enumerate(SERVICES, start=50):
        numprocs = settings.agents if service == "agent" else 1
        env = {} if credentials is None else {"OPLAB_NATS_USER": service,
                                               "OPLAB_NATS_PASSWORD": credentials.passwords[service]}
        programs.append(Program(service, [sys.executable, "-m", f"services.{service}"], priority=priority,
                                numprocs=numprocs, environment=env))
    return programs


def nats_programs(home: Path, nats_url: str, credentials: LabCredentials | None) -> list[Program]:
    """The embedded NATS at ``nats_url``: one server (``nats``), or a cluster of three (``nats-1``..
    ``nats-3``, routes between them, each with its own store) - always with the lab's users when there
    are (configs written under ``home``)."""
    ports = [port_of(url) for url in nats_url.split(",")]
    if len(ports) == 1:
        config = None
        if credentials is not None:
            config = credentials.write_server_config(home / "nats.conf", ports[0], home / "nats" / "js")
        return [Program("nats", nats_command(home / "nats", ports[0], config=config), priority=10,
                        autorestart="true")]
    if credentials is None:
        raise StackError("a NATS cluster needs the lab's users (it is started by `oplab up` only)")
    route_ports = [free_port() for _ in ports]
    routes = tuple(f"127.0.0.1:{p}" for p in route_ports)
    programs = []
    for name, port, route_port in zip(NATS_CLUSTER, ports, route_ports, strict=True):
        store = home / name
        config = credentials.write_server_config(home / f"{name}.conf", port, store / "js",
                                                 cluster=ClusterNode(name, route_port, routes))
        programs.append(Program(name, nats_command(store, port, config=config), priority=10, autorestart="true"))
    return programs


def _reason(exc: ValueError) -> str:
    """One line saying what is wrong (a pydantic error: each field and its message)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
    return str(exc)

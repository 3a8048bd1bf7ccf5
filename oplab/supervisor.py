"""supervisord: the configuration the stack runs under, and a small XML-RPC client.

Programs: ``nats`` (embedded, when no ``NATS_URL`` is given), the subject's
processes (from its provisioner; by default never auto-restarted, so a killed
process stays down until someone restarts it), and the services. supervisord
listens for XML-RPC on 127.0.0.1 only, with a password; a subject that controls
its own processes (restarting a node, say) is given the same endpoint.
"""

from __future__ import annotations

import asyncio
import sys
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from supervisor.xmlrpc import Faults

SERVICES = ("projector", "monitor", "chaos", "agent", "loadgen", "director")


@dataclass
class Program:
    name: str
    command: list[str]
    priority: int
    autorestart: str = "unexpected"
    stopwaitsecs: int = 15
    environment: dict[str, str] = field(default_factory=dict)
    numprocs: int = 1

    def render(self, logs: Path) -> str:
        env = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(self.environment.items()))
        lines = [
            f"[program:{self.name}]",
            "command=" + " ".join(_quote(c) for c in self.command),
            f"priority={self.priority}",
            "autostart=false",
            f"autorestart={self.autorestart}",
            "startsecs=0",
            "startretries=3",
            "stopsignal=TERM",
            f"stopwaitsecs={self.stopwaitsecs}",
            "redirect_stderr=true",
            f"stdout_logfile={logs / (self.name + ('-%(process_num)d' if self.numprocs > 1 else '') + '.log')}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
        ]
        if self.numprocs > 1:
            lines += [f"numprocs={self.numprocs}", "process_name=%(program_name)s-%(process_num)d"]
        if env:
            lines.append(f"environment={env}")
        return "\n".join(lines) + "\n"


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


def _escape(value: str) -> str:
    return value.replace("%", "%%").replace('"', '\\"')


def render_config(home: Path, url: str, programs: list[Program]) -> str:
    """supervisord.conf for ``url`` (``http://user:password@127.0.0.1:port``)."""
    parsed = urlparse(url)
    logs = home / "logs"
    head = f"""[supervisord]
logfile={logs / "supervisord.log"}
pidfile={home / "supervisord.pid"}
directory={Path.cwd()}
childlogdir={logs}
nodaemon=false
silent=true

[inet_http_server]
port=127.0.0.1:{parsed.port}
username={parsed.username}
password={parsed.password}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=http://127.0.0.1:{parsed.port}
username={parsed.username}
password={parsed.password}

"""
    return head + "\n".join(p.render(logs) for p in programs)


def supervisord_binary() -> str:
    return str(Path(sys.executable).parent / "supervisord")


class Supervisor:
    """XML-RPC to one supervisord. Methods are blocking; ``a*`` variants run in a thread."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _proxy(self) -> Any:
        return xmlrpc.client.ServerProxy(self.url + "/RPC2").supervisor

    def alive(self) -> bool:
        try:
            return self._proxy().getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def processes(self) -> list[dict[str, Any]]:
        return list(self._proxy().getAllProcessInfo())

    def start(self, name: str, wait: bool = True) -> None:
        self._proxy().startProcess(name, wait)

    def ensure_started(self, name: str) -> None:
        """Start a program; one that supervisord already (re)started counts as started.

        A crashed service with ``autorestart`` may be started by supervisord between a
        caller's look at its state and this call."""
        try:
            self.start(name)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != Faults.ALREADY_STARTED:
                raise

    def start_group(self, name: str) -> None:
        self._proxy().startProcessGroup(name, True)

    def stop(self, name: str) -> None:
        """Stop and wait; a program that exited on its own meanwhile counts as stopped."""
        try:
            self._proxy().stopProcess(name, True)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != Faults.NOT_RUNNING:
                raise

    def signal(self, name: str, signal: str) -> None:
        """Send ``signal`` (``KILL``, ``STOP``...) to a program's process."""
        self._proxy().signalProcess(name, signal)

    def shutdown(self) -> None:
        self._proxy().shutdown()

    async def astart(self, name: str) -> None:
        await asyncio.to_thread(self.start, name)

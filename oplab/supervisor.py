"""supervisord: the configuration the stack runs under. Its client is :class:`subjects.supervisor.Supervisor`
(re-exported here), the one the subjects use too: every call with a timeout, so a hung supervisord
fails ``oplab status`` or ``oplab down`` with an error instead of hanging it.

Programs: ``nats`` (embedded, when no ``NATS_URL`` is given), the subject's
processes (from its provisioner; by default never auto-restarted, so a killed
process stays down until someone restarts it), and the services. supervisord
listens for XML-RPC on 127.0.0.1 only, with a password; a subject that controls
its own processes (restarting a node, say) is given the same endpoint.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from subjects.supervisor import Supervisor, SupervisorError, SupervisorFault

__all__ = ["SERVICES", "Program", "Supervisor", "SupervisorError", "SupervisorFault", "render_config",
           "supervisord_binary"]

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

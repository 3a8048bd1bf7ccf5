"""The provisioner role (the launcher's): what a subject needs running for a lab run.

``oplab up`` asks the subject's provisioner for a :class:`Deployment` at a
:class:`Site` (the run, the lab's home, a way to get free ports, the supervisor
the launcher runs processes under) and then:

1. starts the deployment's :class:`LocalProcess` es under its supervisor, stage
   by stage (every process of a stage must pass its :class:`HealthCheck` before
   the next stage starts), e.g. a store, then the nodes that use it;
2. gives every lab service (and those processes) the deployment's ``env``, the
   only way the subject's roles in other processes learn its endpoints;
3. shows ``endpoints`` to the user (passwords redacted).

A deployment with no processes is *external*: the subject runs elsewhere
(another machine) and ``env`` says how to reach it. A deployment with a
:class:`ComposeProject` runs the whole lab there, beside the subject (whose
members are reachable only inside the compose network): the launcher brings the
project's profile up, names the run, and watches it through the lab's NATS,
published on a port of 127.0.0.1.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MAX_STAGES = 20
_PROGRAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class HealthCheck:
    """Ready when a TCP connect succeeds (``tcp://host:port``) or a GET answers 200 (``http(s)://…``)."""

    url: str

    def __post_init__(self) -> None:
        if not self.url.startswith(("tcp://", "http://", "https://")):
            raise ValueError(f"health check {self.url!r}: expected tcp://, http:// or https://")


@dataclass(frozen=True)
class LocalProcess:
    """One process the launcher runs for the subject.

    ``name`` is its supervisor program name (and log file). ``restart_on_crash``
    is off by default: a killed subject process stays down, so the fault is seen
    and remedied rather than hidden by the supervisor.
    """

    name: str
    command: list[str]
    stage: int = 0
    health: HealthCheck | None = None
    restart_on_crash: bool = False

    def __post_init__(self) -> None:
        if not _PROGRAM_NAME.match(self.name):
            raise ValueError(f"process name {self.name!r}: letters, digits, '-' and '_' only (1-64)")
        if not 0 <= self.stage < MAX_STAGES:
            raise ValueError(f"process {self.name}: stage {self.stage} is outside 0..{MAX_STAGES - 1}")
        if not self.command:
            raise ValueError(f"process {self.name}: empty command")


@dataclass(frozen=True)
class ComposeProject:
    """The lab and the subject as one Docker Compose project: ``file``, the subject's ``profile``, the
    variable that names the run (``run_variable``) and the one that publishes the lab's NATS on
    127.0.0.1 (``nats_port_variable``)."""

    file: Path
    profile: str
    run_variable: str
    nats_port_variable: str = "OPLAB_NATS_PORT"


@dataclass(frozen=True)
class Deployment:
    """What a run of the subject needs: processes to run (none: external), the environment, or a
    compose project the whole lab runs in."""

    env: dict[str, str]
    processes: tuple[LocalProcess, ...] = ()
    endpoints: dict[str, str] = field(default_factory=dict)
    compose: ComposeProject | None = None

    @property
    def external(self) -> bool:
        return not self.processes and self.compose is None

    def stages(self) -> list[list[LocalProcess]]:
        """The processes grouped by stage, in start order."""
        order = sorted({p.stage for p in self.processes})
        return [[p for p in self.processes if p.stage == s] for s in order]


@dataclass(frozen=True)
class Site:
    """Where the launcher runs a subject: the run, the lab's home (a subject keeps its data in
    ``home / <its name>``), the Python to run its processes with, the XML-RPC URL (with
    credentials) of the supervisor that runs them, and a source of free 127.0.0.1 ports."""

    run: str
    home: Path
    python: str
    supervisor_url: str
    free_port: Callable[[], int]


class Provisioner(abc.ABC):
    """Plans a subject's deployment for one run."""

    @abc.abstractmethod
    def plan(self, site: Site) -> Deployment:
        """The deployment for ``site``. Raise ValueError (with the reason) for a bad configuration."""

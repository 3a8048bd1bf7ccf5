"""Acting on the TiKV cluster's processes (stores, PD members) by name: kill, start, pause, unpause,
disconnect from its network, reconnect.

- :class:`DockerControl`: the Docker Engine API (the ``docker`` SDK, no shelling out).
  Only containers of the configured compose project are touched: a target is the
  container whose ``com.docker.compose.service`` label is its name; anything else is
  refused before anything is done. Trust: whoever holds the Docker socket is root on
  the host, so only the chaos service and the agent get it (in compose, through a
  socket proxy that allows the container verbs used here and nothing else).
- :class:`SupervisorProcessControl`: supervisord's XML-RPC, for stores that run as
  local processes (and the lab's store doubles in tests): KILL, STOP/CONT, and
  USR1/USR2 for disconnect/reconnect, which the process must honour. A paused
  process is read from ``/proc/<pid>/status``; a disconnected one cannot be told
  from outside, so it reads ``running`` (the status probe shows it unreachable).

States: ``running``, ``paused``, ``exited``, ``disconnected`` (running, off its network),
``restarting``; ``missing`` when there is no such process.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from subjects.contract import RefusedError, SubjectError
from subjects.supervisor import RUNNING_STATES, SupervisorControl
from subjects.tikv.settings import TiKVSettings

T = TypeVar("T")

#: the verbs that act on a process (every one but ``state``), as faults and tools name them
ProcessVerb = Literal["kill", "start", "pause", "unpause", "disconnect", "reconnect"]


class ProcessControl(abc.ABC):
    """The cluster's processes, by target name. Every verb but :meth:`state` returns what it did, in
    words (a tool's or a fault's result), and raises SubjectError when it cannot act. The verbs that
    undo a fault (start, unpause, reconnect) are harmless on a process that needs nothing: remedies
    and reverts rely on that."""

    @abc.abstractmethod
    async def state(self, name: str) -> str:
        """One of the states above."""

    @abc.abstractmethod
    async def kill(self, name: str) -> str:
        """SIGKILL: it stays down until started."""

    @abc.abstractmethod
    async def start(self, name: str) -> str:
        """Start it unless it runs."""

    @abc.abstractmethod
    async def pause(self, name: str) -> str:
        """Freeze it: it still exists, and neither answers nor heartbeats."""

    @abc.abstractmethod
    async def unpause(self, name: str) -> str:
        """Resume it if frozen."""

    @abc.abstractmethod
    async def disconnect(self, name: str) -> str:
        """Cut it off the cluster's network; it keeps running."""

    @abc.abstractmethod
    async def reconnect(self, name: str) -> str:
        """Put it back on the cluster's network if cut off."""

    async def act(self, verb: ProcessVerb, name: str) -> str:
        """Do ``verb`` to ``name``: how a fault or a tool that declares its verb acts."""
        verbs = {"kill": self.kill, "start": self.start, "pause": self.pause, "unpause": self.unpause,
                 "disconnect": self.disconnect, "reconnect": self.reconnect}
        return await verbs[verb](name)

    async def close(self) -> None:
        """Release connections. Default: nothing to release."""


class SupervisorProcessControl(ProcessControl):
    def __init__(self, settings: TiKVSettings) -> None:
        if not settings.supervisor_url:
            raise ValueError("OPLAB_TIKV_CONTROL=supervisor needs OPLAB_TIKV_SUPERVISOR_URL")
        self.supervisor = SupervisorControl(settings.supervisor_url, settings.control_timeout_s)

    async def state(self, name: str) -> str:
        info = await self.supervisor.info(name)
        statename = str(info.get("statename"))
        if statename not in RUNNING_STATES:
            return "exited"
        pid = int(info.get("pid") or 0)
        return "paused" if pid and _stopped(pid) else "running"

    async def kill(self, name: str) -> str:
        pid = await self.supervisor.signal(name, "KILL")
        return f"SIGKILL sent to {name} (pid {pid})"

    async def start(self, name: str) -> str:
        return f"{name}: {await self.supervisor.start(name)}"

    async def pause(self, name: str) -> str:
        pid = await self.supervisor.signal(name, "STOP")
        return f"{name} (pid {pid}) stopped with SIGSTOP"

    async def unpause(self, name: str) -> str:
        return await self._undo(name, "CONT", "resume", f"{name} resumed with SIGCONT")

    async def disconnect(self, name: str) -> str:
        await self.supervisor.signal(name, "USR1")
        return f"{name} told to drop off its network (SIGUSR1)"

    async def reconnect(self, name: str) -> str:
        return await self._undo(name, "USR2", "reconnect", f"{name} told to rejoin its network (SIGUSR2)")

    async def _undo(self, name: str, signal: str, verb: str, done: str) -> str:
        """Undo a fault with ``signal``, saying ``done``; a process that is not running has nothing to
        ``verb`` and gets no signal (an undo is harmless where nothing needs it)."""
        if await self.state(name) == "exited":
            return f"{name} is not running: nothing to {verb}"
        await self.supervisor.signal(name, signal)
        return done


def _stopped(pid: int) -> bool:
    """Whether a local process is stopped (SIGSTOP): ``State: T`` in /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return any(line.startswith("State:") and line.split()[1] in ("T", "t") for line in status.splitlines())


class DockerControl(ProcessControl):
    """Containers of one compose project, through the Docker Engine API (calls run in threads)."""

    def __init__(self, settings: TiKVSettings) -> None:
        self.settings = settings
        self._client: Any = None

    def _docker(self) -> Any:
        if self._client is None:
            import docker  # the SDK is only needed where the lab controls containers

            try:
                self._client = docker.from_env(timeout=int(self.settings.control_timeout_s))
            except docker.errors.DockerException as exc:
                raise SubjectError(f"no Docker engine answers ({_reason(exc)}): set DOCKER_HOST") from exc
        return self._client

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        import docker
        import requests

        try:
            return await asyncio.to_thread(fn)
        except docker.errors.NotFound as exc:
            raise RefusedError(f"{what}: {_reason(exc)}") from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise SubjectError(f"{what}: Docker: {_reason(exc)}") from exc

    def _container(self, name: str) -> Any:
        project = self.settings.compose_project
        labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={name}"]
        found = self._docker().containers.list(all=True, filters={"label": labels})
        if not found:
            raise RefusedError(f"{name} is not a container of compose project {project!r}: refused")
        return found[0]

    def _network(self) -> Any:
        return self._docker().networks.get(self.settings.compose_network)

    async def state(self, name: str) -> str:
        def read() -> str:
            container = self._container(name)
            status = str(container.status)
            networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
            if status == "running" and self.settings.compose_network not in networks:
                return "disconnected"
            return status
        try:
            return await self._call(f"state of {name}", read)
        except RefusedError:
            return "missing"

    async def kill(self, name: str) -> str:
        await self._call(f"kill {name}", lambda: self._container(name).kill(signal="SIGKILL"))
        return f"container {name} killed (SIGKILL)"

    async def start(self, name: str) -> str:
        def start() -> str:
            container = self._container(name)
            if container.status == "running":
                return f"container {name} already running"
            container.start()
            return f"container {name} started"
        return await self._call(f"start {name}", start)

    async def pause(self, name: str) -> str:
        await self._call(f"pause {name}", lambda: self._container(name).pause())
        return f"container {name} paused (frozen)"

    async def unpause(self, name: str) -> str:
        def unpause() -> str:
            container = self._container(name)
            if container.status != "paused":
                return f"container {name} was not paused ({container.status})"
            container.unpause()
            return f"container {name} unpaused"
        return await self._call(f"unpause {name}", unpause)

    async def disconnect(self, name: str) -> str:
        network = self.settings.compose_network
        await self._call(f"disconnect {name}", lambda: self._network().disconnect(self._container(name)))
        return f"container {name} disconnected from network {network}"

    async def reconnect(self, name: str) -> str:
        network = self.settings.compose_network

        def connect() -> str:
            container = self._container(name)
            if network in (container.attrs.get("NetworkSettings", {}).get("Networks") or {}):
                return f"container {name} already on network {network}"
            self._network().connect(container, aliases=[name])
            return f"container {name} reconnected to network {network}"
        return await self._call(f"reconnect {name}", connect)

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def make_control(settings: TiKVSettings) -> ProcessControl:
    return SupervisorProcessControl(settings) if settings.control == "supervisor" else DockerControl(settings)

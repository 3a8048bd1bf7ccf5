"""Process control through supervisord's XML-RPC API, for subjects whose processes run under one.

Convention: each controlled process is a supervisord program (the rate limiter's
nodes: program name == node id) with ``autorestart=false`` (a killed process
stays down until someone starts it) and ``startsecs=0`` (``startProcess`` returns
as soon as the process is spawned; readiness is the subject's to judge).
``supervisor_url`` may be ``http://host:port/RPC2`` or ``unix:///path/to/supervisor.sock``.

Every call runs in a worker thread (``xmlrpc.client`` is blocking) with its own
connection and a timeout; failures surface as :class:`SubjectError` with the
supervisord fault text.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import xmlrpc.client
from typing import Any
from urllib.parse import urlparse

from subjects.contract import SubjectError

RUNNING_STATES = frozenset({"STARTING", "RUNNING"})


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _Transport(xmlrpc.client.Transport):
    """An XML-RPC transport with a socket timeout, over TCP or a unix socket."""

    def __init__(self, timeout: float, unix_path: str | None = None) -> None:
        super().__init__()
        self._timeout = timeout
        self._unix_path = unix_path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._unix_path is not None:
            return _UnixHTTPConnection(self._unix_path, self._timeout)
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class SupervisorControl:
    """Start, stop, signal and inspect processes run by supervisord (by program name)."""

    def __init__(self, supervisor_url: str, timeout_s: float = 5.0) -> None:
        self.url = supervisor_url
        self.timeout_s = timeout_s
        parsed = urlparse(supervisor_url)
        # what messages may show: never the credentials in the URL
        self.address = parsed.path if parsed.scheme == "unix" else f"{parsed.hostname}:{parsed.port}"
        self._unix: str | None
        if parsed.scheme == "unix":
            self._endpoint, self._unix = "http://localhost/RPC2", parsed.path
        elif parsed.scheme in ("http", "https"):
            path = parsed.path if parsed.path not in ("", "/") else "/RPC2"
            self._endpoint, self._unix = parsed._replace(path=path).geturl(), None
        else:
            raise ValueError(f"supervisor_url must be http:// or unix://, got {supervisor_url!r}")

    def _call_sync(self, method: str, *args: Any) -> Any:
        proxy = xmlrpc.client.ServerProxy(
            self._endpoint, transport=_Transport(self.timeout_s, self._unix), allow_none=True
        )
        with proxy:
            target = proxy
            for part in method.split("."):
                target = getattr(target, part)
            return target(*args)

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(self._call_sync, method, *args)
        except xmlrpc.client.Fault as exc:
            raise SupervisorFault(method, args, exc) from exc
        except xmlrpc.client.ProtocolError as exc:  # its text carries the URL, credentials included
            raise SubjectError(f"supervisord at {self.address} refused {method}: "
                               f"HTTP {exc.errcode} {exc.errmsg}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise SubjectError(f"supervisord at {self.address} unreachable ({method}): "
                               f"{type(exc).__name__}: {exc}") from None

    async def info(self, name: str) -> dict[str, Any]:
        """supervisord's process info for ``name`` (statename, pid, ...)."""
        result = await self._call("supervisor.getProcessInfo", name)
        if not isinstance(result, dict):
            raise SubjectError(f"unexpected reply from supervisord for {name}: {result!r}")
        return result

    async def state(self, name: str) -> str:
        """supervisord state name: RUNNING, STARTING, STOPPED, EXITED, FATAL, BACKOFF, ..."""
        return str((await self.info(name))["statename"])

    async def pid(self, name: str) -> int | None:
        """The process id while running, else None."""
        info = await self.info(name)
        pid = int(info.get("pid") or 0)
        return pid if pid and info.get("statename") in RUNNING_STATES else None

    async def kill(self, name: str) -> int:
        """Send SIGKILL to the process; returns the pid that was killed.

        With ``autorestart=false`` it stays down. Raises SubjectError if it
        is not running (nothing to kill) or supervisord refuses.
        """
        return await self.signal(name, "KILL")

    async def signal(self, name: str, signal: str) -> int:
        """Send ``signal`` (``KILL``, ``STOP``, ``CONT``, ``USR1``, …) to the running process; its pid.
        Raises SubjectError if it is not running or supervisord refuses."""
        info = await self.info(name)
        if info.get("statename") not in RUNNING_STATES:
            raise SubjectError(f"process {name} is not running (state {info.get('statename')})")
        await self._call("supervisor.signalProcess", name, signal)
        return int(info.get("pid") or 0)

    async def start(self, name: str) -> str:
        """Start the process unless it already runs. Returns what was done."""
        try:
            await self._call("supervisor.startProcess", name, False)
        except SupervisorFault as exc:
            if exc.name == "ALREADY_STARTED":
                return "already running"
            raise
        return "started"

    async def stop(self, name: str) -> str:
        """Stop (SIGTERM, then SIGKILL after the program's stopwaitsecs) unless already stopped."""
        try:
            await self._call("supervisor.stopProcess", name, True)
        except SupervisorFault as exc:
            if exc.name == "NOT_RUNNING":
                return "not running"
            raise
        return "stopped"


class SupervisorFault(SubjectError):
    """supervisord answered with an XML-RPC fault (``name`` is its symbolic code)."""

    _NAMES = {10: "BAD_NAME", 20: "NO_FILE", 30: "FAILED", 50: "ABNORMAL_TERMINATION",
              60: "ALREADY_STARTED", 70: "NOT_RUNNING", 80: "SPAWN_ERROR", 90: "BAD_SIGNAL",
              2: "INCORRECT_PARAMETERS", 1: "UNKNOWN_METHOD"}

    def __init__(self, method: str, args: tuple[Any, ...], fault: xmlrpc.client.Fault) -> None:
        self.name = self._NAMES.get(fault.faultCode, str(fault.faultCode))
        target = args[0] if args else ""
        hint = f" (no program named {target!r} in supervisord)" if self.name == "BAD_NAME" else ""
        super().__init__(f"supervisord {method}({target}) failed: {fault.faultString}{hint}")

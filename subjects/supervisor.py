"""The one XML-RPC client for supervisord: the lab's launcher (``oplab``) and the subjects whose
processes run under a supervisord (the rate limiter's nodes, TiKV's local stores) both use it.

:class:`Supervisor` is blocking (the launcher, the CLI, tests); :class:`SupervisorControl` is the
async face a subject's roles use (each call in a worker thread).

**URLs.** ``http://[user:password@]host:port[/RPC2]`` (no path means ``/RPC2``) or
``unix:///path/to/supervisor.sock``.

**Transport.** supervisor's own ``supervisor.xmlrpc.SupervisorTransport`` (what ``supervisorctl``
uses): it speaks HTTP over TCP and over a unix socket, and sends HTTP basic auth from the username
and password it is *given* - it does not read them from the URL (for ``http://`` it takes only the
host and port from it), so :class:`Supervisor` takes them out of the URL and hands them over. Its
connections have no timeout; ours get one on every socket operation (connect, send, each read), so a
supervisord that accepts the connection and never answers fails the call after ``timeout_s``
instead of hanging the caller. Calls in which supervisord itself waits on a process (a start or
stop with ``wait``) get :data:`PROCESS_WAIT_S` more. Each call opens its own connection and closes
it: a client may be shared between threads, and a call that timed out leaves no half-read
connection behind for the next one.

**Errors** are :class:`SupervisorError` (a :class:`~subjects.contract.SubjectError`), whose
messages never carry the URL's password: :class:`SupervisorFault` when supervisord answered with a
fault (``code`` is one of ``supervisor.xmlrpc.Faults``, ``name`` its name there),
:class:`SupervisorUnreachable` when it did not answer (nothing listening, connection reset, an HTTP
error such as a wrong password, a reply that is not XML-RPC), :class:`SupervisorTimeout` (a kind of
unreachable) when nothing came back within the timeout.

**Convention for subjects:** each controlled process is a supervisord program (the rate limiter's
nodes: program name == node id) with ``autorestart=false`` (a killed process stays down until
someone starts it) and ``startsecs=0`` (``startProcess`` returns as soon as the process is spawned;
readiness is the subject's to judge).
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import xmlrpc.client
from typing import Any
from urllib.parse import urlparse
from xml.parsers.expat import ExpatError

from supervisor.xmlrpc import Faults, SupervisorTransport, UnixStreamHTTPConnection, getFaultDescription

from subjects.contract import SubjectError

RUNNING_STATES = frozenset({"STARTING", "RUNNING"})
DEFAULT_TIMEOUT_S = 10.0
"""One call to supervisord, unless the client is given another."""
PROCESS_WAIT_S = 30.0
"""Added to the timeout of a call in which supervisord waits on a process (start or stop with
``wait``): more than the longest ``stopwaitsecs`` the lab writes (15 s), then SIGKILL and reaping."""


class SupervisorError(SubjectError):
    """A call to supervisord failed; the message says why (never with the URL's password)."""


class SupervisorFault(SupervisorError):
    """supervisord answered with an XML-RPC fault: ``code`` (one of ``supervisor.xmlrpc.Faults``)
    and ``name``, its name there (``BAD_NAME``, ``NOT_RUNNING``, ...; the number if Faults has none)."""

    def __init__(self, method: str, args: tuple[Any, ...], fault: xmlrpc.client.Fault) -> None:
        self.code = int(fault.faultCode)
        described = getFaultDescription(self.code)
        self.name = described if described != "UNKNOWN" else str(self.code)
        target = args[0] if args else ""
        hint = f" (no program named {target!r} in supervisord)" if self.code == Faults.BAD_NAME else ""
        super().__init__(f"supervisord {method}({target}) failed: {fault.faultString}{hint}")


class SupervisorUnreachable(SupervisorError):
    """supervisord did not answer the call (see the message)."""


class SupervisorTimeout(SupervisorUnreachable):
    """Nothing came back within the timeout: supervisord is hung, or too busy to answer."""


class _UnixConnection(UnixStreamHTTPConnection):
    """supervisor's unix-socket connection, with the timeout set before connecting (its own
    ``connect`` makes a blocking socket and ignores ``timeout``)."""

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socketfile)


class _Transport(SupervisorTransport):
    """``SupervisorTransport`` whose connections time out (module doc)."""

    def __init__(self, serverurl: str, username: str | None, password: str | None, timeout_s: float) -> None:
        super().__init__(username, password, serverurl)
        if serverurl.startswith("unix://"):
            path = serverurl.removeprefix("unix://")

            def connection() -> http.client.HTTPConnection:
                conn = _UnixConnection("localhost", timeout=timeout_s)
                conn.socketfile = path
                return conn
        else:
            plain = self._get_connection  # HTTPConnection(host, port): connect() and reads use .timeout

            def connection() -> http.client.HTTPConnection:
                conn: http.client.HTTPConnection = plain()
                conn.timeout = timeout_s
                return conn
        self._get_connection = connection


class Supervisor:
    """A blocking client of one supervisord (module doc). Every method is one XML-RPC call with a timeout."""

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        parsed = urlparse(url)
        self._username, self._password = parsed.username, parsed.password
        if parsed.scheme == "unix":
            self.address = parsed.path  # what messages show: never the credentials in the URL
            self._serverurl, self._endpoint = f"unix://{parsed.path}", "http://localhost/RPC2"
        elif parsed.scheme == "http":
            self.address = f"{parsed.hostname}:{parsed.port}"
            path = parsed.path if parsed.path not in ("", "/") else "/RPC2"
            self._serverurl = f"http://{self.address}"
            self._endpoint = self._serverurl + path
        else:
            raise ValueError(f"a supervisord URL is http:// or unix://, got scheme {parsed.scheme!r}")

    def call(self, method: str, *args: Any, wait: bool = False) -> Any:
        """Call ``method`` (``supervisor.getState``, ...); with ``wait`` supervisord may take up to
        :data:`PROCESS_WAIT_S` more before answering. Raises :class:`SupervisorError`."""
        timeout = self.timeout_s + (PROCESS_WAIT_S if wait else 0.0)
        transport = _Transport(self._serverurl, self._username, self._password, timeout)
        try:
            with xmlrpc.client.ServerProxy(self._endpoint, transport=transport, allow_none=True) as proxy:
                target: Any = proxy
                for part in method.split("."):
                    target = getattr(target, part)
                return target(*args)
        except xmlrpc.client.Fault as exc:
            raise SupervisorFault(method, args, exc) from None
        except TimeoutError:
            raise SupervisorTimeout(f"supervisord at {self.address} did not answer {method} within {timeout:g}s "
                                    "(hung, or too busy to answer)") from None
        except xmlrpc.client.ProtocolError as exc:  # its own text carries the URL
            raise SupervisorUnreachable(f"supervisord at {self.address} refused {method}: "
                                        f"HTTP {exc.errcode} {exc.errmsg}") from None
        except (OSError, http.client.HTTPException, xmlrpc.client.Error, ExpatError) as exc:
            raise SupervisorUnreachable(f"supervisord at {self.address} unreachable ({method}): "
                                        f"{type(exc).__name__}: {exc}") from None

    def _call_unless(self, already: int, method: str, *args: Any, wait: bool) -> bool:
        """:meth:`call` ``method``; False when supervisord answers with the fault ``already`` (what the
        call asks for holds already: ``ALREADY_STARTED``, ``NOT_RUNNING``), True when it did it."""
        try:
            self.call(method, *args, wait=wait)
        except SupervisorFault as exc:
            if exc.code != already:
                raise
            return False
        return True

    def alive(self) -> bool:
        """Whether supervisord answers and runs. False when nothing of it answers at the URL (nothing
        listening, another server, a wrong password) or it is shutting down; a supervisord that
        accepts the connection and does not answer is no answer either way: :class:`SupervisorTimeout`."""
        try:
            return bool(self.call("supervisor.getState")["statename"] == "RUNNING")
        except SupervisorTimeout:
            raise
        except SupervisorError:
            return False

    def process(self, name: str) -> dict[str, Any]:
        """supervisord's process info for ``name`` (``group:name`` for one of a group): statename, pid, ..."""
        result = self.call("supervisor.getProcessInfo", name)
        if not isinstance(result, dict):
            raise SupervisorError(f"unexpected reply from supervisord for {name}: {result!r}")
        return result

    def processes(self) -> list[dict[str, Any]]:
        """Every program's process info."""
        return list(self.call("supervisor.getAllProcessInfo"))

    def start(self, name: str, wait: bool = True) -> None:
        """Start a program (with ``wait``, until supervisord counts it started). A program that
        already runs is a :class:`SupervisorFault` (``ALREADY_STARTED``): see :meth:`ensure_started`."""
        self.call("supervisor.startProcess", name, wait, wait=wait)

    def ensure_started(self, name: str, wait: bool = True) -> bool:
        """Start a program unless it runs; True if this call started it (``wait`` as for :meth:`start`).

        A crashed service with ``autorestart`` may be started by supervisord between a caller's look
        at its state and this call: that counts as started, not as an error."""
        return self._call_unless(Faults.ALREADY_STARTED, "supervisor.startProcess", name, wait, wait=wait)

    def start_group(self, name: str) -> None:
        """Start every process of a group (``numprocs`` > 1) and wait for them."""
        self.call("supervisor.startProcessGroup", name, True, wait=True)

    def stop(self, name: str) -> bool:
        """Stop a program and wait (SIGTERM, then SIGKILL after its ``stopwaitsecs``); True if it was
        running. A program that exited on its own meanwhile counts as stopped."""
        return self._call_unless(Faults.NOT_RUNNING, "supervisor.stopProcess", name, True, wait=True)

    def stop_group(self, name: str) -> None:
        """Stop every process of a group and wait."""
        self.call("supervisor.stopProcessGroup", name, True, wait=True)

    def signal(self, name: str, signal: str) -> None:
        """Send ``signal`` (``KILL``, ``STOP``, ``CONT``, ``USR1``...) to a program's running process."""
        self.call("supervisor.signalProcess", name, signal)

    def reload_config(self) -> tuple[list[str], list[str], list[str]]:
        """Re-read the configuration file: the groups (added, changed, removed) since the last read.
        Nothing is applied: see :meth:`add_group` and :meth:`remove_group`."""
        added, changed, removed = self.call("supervisor.reloadConfig")[0]
        return list(added), list(changed), list(removed)

    def add_group(self, name: str) -> None:
        """Bring a group of the re-read configuration in (not started: the lab's programs are ``autostart=false``)."""
        self.call("supervisor.addProcessGroup", name)

    def remove_group(self, name: str) -> None:
        """Take a stopped group out (``STILL_RUNNING`` while any of its processes runs)."""
        self.call("supervisor.removeProcessGroup", name)

    def shutdown(self) -> None:
        """Ask supervisord to stop its programs and exit; returns at once (it exits in its own time)."""
        self.call("supervisor.shutdown")


class SupervisorControl:
    """Start, stop, signal and inspect processes run by supervisord (by program name), for a
    subject's roles: :class:`Supervisor`'s calls in a worker thread, failures as :class:`SupervisorError`."""

    def __init__(self, supervisor_url: str, timeout_s: float = 5.0) -> None:
        self.client = Supervisor(supervisor_url, timeout_s)

    async def info(self, name: str) -> dict[str, Any]:
        """supervisord's process info for ``name`` (statename, pid, ...)."""
        return await asyncio.to_thread(self.client.process, name)

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
        await asyncio.to_thread(self.client.signal, name, signal)
        return int(info.get("pid") or 0)

    async def start(self, name: str) -> str:
        """Start the process unless it already runs. Returns what was done.

        Returns once it is spawned, without waiting for supervisord to count it started (with
        ``startsecs=0`` that is its next tick, up to a second later): readiness is the subject's to judge."""
        started = await asyncio.to_thread(self.client.ensure_started, name, False)
        return "started" if started else "already running"

    async def stop(self, name: str) -> str:
        """Stop (SIGTERM, then SIGKILL after the program's stopwaitsecs) unless already stopped."""
        return "stopped" if await asyncio.to_thread(self.client.stop, name) else "not running"

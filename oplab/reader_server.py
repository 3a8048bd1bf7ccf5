"""One nats-server per stopped lab's store for every CLI reader at once, and nothing left behind.

Reading a stopped lab's log (``oplab events``, ``oplab console --replay``, ``oplab tickets``...)
needs a nats-server on the lab's store (``<home>/nats``). Two servers must never hold one store,
and no server may outlive its readers, however they end: ``q``, Ctrl-C, SIGHUP (the terminal
closed), SIGTERM, a crash, SIGKILL.

How (Linux; every file below is in the store's directory):

- A *keeper* process (``python -m oplab.reader_server STORE``, in a session of its own so the
  readers' terminal signals do not reach it) starts the server as its child, tied to its own death
  (``prctl(PR_SET_PDEATHSIG)``: :func:`oplab.infra.die_with_parent_hook`), and lives as long as
  readers do.
- Each reader holds a shared ``flock`` on ``reader-users`` while it reads. The kernel drops a
  process's locks when it dies, SIGKILL included: no reader has to exit cleanly to be counted out.
- The keeper waits for an exclusive lock on ``reader-users``: it gets it once no reader holds a
  share, then stops the server and exits. So the last reader out, by any way out, stops it, and a
  reader that reused the server of one that left keeps it.
- ``reader-lock`` (exclusive) serialises the decisions: a reader takes it, takes its share, then
  reuses the server ``reader.json`` names (its keeper alive and the server answering) or starts a
  keeper, and lets go. A second reader therefore waits for the first to finish starting, and the
  keeper stops the server only while holding ``reader-lock`` with no share taken, so a reader never
  registers on a server on its way down.
- A nats-server found on the store without a keeper (left by an older ``oplab`` whose terminal
  closed, or a test's) is read through if it answers, and left as it is: not ours to stop. One that
  does not answer is stopped before a new one starts. :func:`stop_reader_servers` stops the keeper
  and any keeperless server (for ``oplab up`` and ``oplab down``, whose own NATS needs the store).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from tenacity import Retrying, retry_if_exception_type, wait_fixed

from events.waiting import WaitTimeout, wait_until_sync
from oplab.infra import InfraError, RunningServer, start_nats

log = logging.getLogger(__name__)

USERS = "reader-users"
LOCK = "reader-lock"
STATE = "reader.json"
KEEPER_MODULE = "oplab.reader_server"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
_KEEPERS: list[subprocess.Popen[bytes]] = []
"""Keepers this process started: they outlive the block that started them, by design (kept here so
that no "still running" warning is raised when the Popen would be collected)."""


@contextlib.contextmanager
def reader_server(store: Path, log_file: Path | None = None) -> Iterator[str]:
    """The URL of the nats-server reading ``store``: the running one if there is one, else a new one.

    While the block runs this process is one of the server's readers; the server stops once its
    last reader is gone, whichever way it went. ``log_file`` receives the server's output."""
    store = store.resolve()
    store.mkdir(parents=True, exist_ok=True)
    users = _open(store / USERS)
    try:
        with _exclusive(store / LOCK):
            fcntl.flock(users, fcntl.LOCK_SH)
            url = _reusable(store) or _start_keeper(store, log_file)
    except BaseException:
        users.close()
        raise
    try:
        yield url
    finally:
        users.close()  # our share goes; the keeper stops the server if it was the last


def stop_reader_servers(home: Path) -> int:
    """Stop every reader's nats-server on the stores under ``home`` (``nats``, ``nats-1``..): their
    keepers and any server left on a store without one. Readers still connected lose their server.
    Returns how many processes were stopped."""
    stopped = 0
    for store in sorted(p for p in home.resolve().glob("nats*") if p.is_dir()):
        with _exclusive(store / LOCK):
            state = _state(store)
            keeper = state.get("keeper") if state else None
            if isinstance(keeper, int) and _is_keeper(keeper, store):
                _terminate(keeper)
                stopped += 1
            for pid in servers_on_store(store):
                _terminate(pid)
                stopped += 1
            (store / STATE).unlink(missing_ok=True)
    return stopped


def servers_on_store(store: Path) -> list[int]:
    """Pids of nats-server processes started on ``store`` without a config (``-sd STORE/js``): the
    readers' servers, never a lab's own (which reads its store from its config file)."""
    js = str(store.resolve() / "js")
    found = []
    for argv, pid in _processes():
        if argv and os.path.basename(argv[0]) == "nats-server" and _option(argv, "-sd") == js:
            found.append(pid)
    return found


# -- the reader's side ------------------------------------------------------------------------------


def _reusable(store: Path) -> str | None:
    """The URL of a server already reading ``store``: the keeper's, if it is alive and answers; else
    one started on the store without a keeper that answers (an older ``oplab``'s reader, a test's
    server): read through it and leave it be, it is not ours to stop. None when there is none, after
    stopping what cannot serve (a keeper whose server died, a keeperless server that does not answer)."""
    state = _state(store)
    keeper, url = (state.get("keeper"), state.get("url")) if state else (None, None)
    if isinstance(keeper, int) and _is_keeper(keeper, store):
        if isinstance(url, str) and _answers(url):
            return url
        _terminate(keeper)
    (store / STATE).unlink(missing_ok=True)
    for pid in servers_on_store(store):
        other = _ports_file_url(store, pid)
        if other is not None and _answers(other):
            log.info("reading through a nats-server started without a keeper",
                     extra={"store": str(store), "server_pid": pid})
            return other
        log.warning("stopping a nats-server without a keeper that does not answer",
                    extra={"store": str(store), "server_pid": pid})
        _terminate(pid)
    return None


def _ports_file_url(store: Path, pid: int) -> str | None:
    """The client URL a server started by :func:`oplab.infra.start_nats` wrote in ``store/ports``."""
    try:
        url = json.loads((store / "ports" / f"nats-server_{pid}.ports").read_text())["nats"][0]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return url if isinstance(url, str) else None


def _start_keeper(store: Path, log_file: Path | None) -> str:
    """Start a keeper (in its own session: a terminal's SIGHUP is not for it) and record it."""
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    err: IO[bytes] | int = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    try:
        keeper = subprocess.Popen(
            [sys.executable, "-m", KEEPER_MODULE, str(store)] + ([str(log_file)] if log_file else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        _KEEPERS.append(keeper)
    finally:
        if not isinstance(err, int):
            err.close()
    assert keeper.stdout is not None
    try:
        line = _read_line(keeper, START_TIMEOUT_S)
        started = json.loads(line)
        url = started["url"]
    except (InfraError, ValueError, KeyError) as exc:
        _terminate(keeper.pid)
        where = f"; see {log_file}" if log_file else ""
        raise InfraError(f"the nats-server reading {store} did not start: {exc}{where}") from None
    finally:
        keeper.stdout.close()
    _write_state(store, {"keeper": keeper.pid, "server": started.get("server"), "url": url})
    return str(url)


def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            raise InfraError(f"no answer within {timeout_s:.0f}s")
    line = proc.stdout.readline().decode().strip()
    if not line:
        raise InfraError(f"the keeper exited with status {proc.wait(STOP_TIMEOUT_S)}")
    return line


# -- the keeper -------------------------------------------------------------------------------------


class _Stop(BaseException):
    """A signal, or the server's death: the keeper stops."""


def keep(store: Path, log_file: Path | None) -> int:
    """The keeper's life: serve ``store`` until no reader holds a share of ``reader-users``."""

    def on_signal(signum: int, _frame: Any) -> None:
        raise _Stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    users = _open(store / USERS)
    server: RunningServer | None = None
    try:
        server = start_nats(store, log_file=log_file, die_with_parent=True)

        def on_child(_signum: int, _frame: Any) -> None:
            if server is not None and server.process.poll() is not None:
                raise _Stop(f"nats-server exited with status {server.process.returncode}")

        signal.signal(signal.SIGCHLD, on_child)
        sys.stdout.write(json.dumps({"url": server.url, "server": server.process.pid}) + "\n")
        sys.stdout.flush()
        _detach_stdout()
        control = _wait_for_no_reader(store, users)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # its exit is ours to cause now
        log.info("no reader left: stopping nats-server", extra={"server_pid": server.process.pid})
        try:
            server.stop(STOP_TIMEOUT_S)  # while holding reader-lock: no reader registers on it meanwhile
        finally:
            control.close()
        return 0
    except (_Stop, BrokenPipeError) as why:  # a signal, the server's death, or our reader died starting us
        log.info("reader nats-server keeper stopping", extra={"reason": str(why)})
        return 0
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if server is not None:
            server.stop(STOP_TIMEOUT_S)
        users.close()


def _wait_for_no_reader(store: Path, users: IO[str]) -> IO[str]:
    """Once no reader holds a share of ``reader-users``: ``reader-lock``, held (the caller stops the
    server before letting go of it, so no reader registers on a server on its way down)."""
    control = _open(store / LOCK)

    def take_both() -> None:
        fcntl.flock(users, fcntl.LOCK_EX)  # granted once every reader's share is gone
        try:
            fcntl.flock(control, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a reader is registering: let it take its share, then wait again
            fcntl.flock(users, fcntl.LOCK_UN)
            raise

    # tried again after a pause for as long as it takes (no deadline: the keeper lives as long as its readers)
    Retrying(retry=retry_if_exception_type(BlockingIOError), wait=wait_fixed(0.05), reraise=True)(take_both)
    state = _state(store)
    if state and state.get("keeper") == os.getpid():
        (store / STATE).unlink(missing_ok=True)
    return control


def _detach_stdout() -> None:
    """Nothing more goes to the reader that started us (it may be gone: no SIGPIPE later)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


# -- processes, files and locks ---------------------------------------------------------------------


def _open(path: Path) -> IO[str]:
    return open(path, "a")  # held for the lock's lifetime; close-on-exec by default


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open(path) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _state(store: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((store / STATE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _write_state(store: Path, doc: dict[str, Any]) -> None:
    partial = store / f".{STATE}.partial"
    partial.write_text(json.dumps(doc))
    partial.replace(store / STATE)


def _processes() -> Iterator[tuple[list[str], int]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            yield [a.decode(errors="replace") for a in argv if a], int(entry.name)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _is_keeper(pid: int, store: Path) -> bool:
    """``pid`` is alive and is the keeper of ``store`` (not a process that reused its pid)."""
    argv = _cmdline(pid)
    return KEEPER_MODULE in argv and str(store.resolve()) in argv and not _gone(pid)


def _gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def _option(argv: list[str], name: str) -> str | None:
    with contextlib.suppress(ValueError, IndexError):
        return argv[argv.index(name) + 1]
    return None


def _answers(url: str) -> bool:
    host, _, port = url.removeprefix("nats://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), 0.5):
            return True
    except (OSError, ValueError):
        return False


def _terminate(pid: int) -> None:
    """SIGTERM ``pid`` and wait (under a deadline) until it is gone; SIGKILL if it lingers."""

    def gone() -> bool:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child: reap it
        return _gone(pid)

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        try:  # polled: another process's exit has no event to wait on here
            wait_until_sync(gone, timeout=STOP_TIMEOUT_S, interval=0.02, what=f"process {pid} gone after {sig.name}")
        except WaitTimeout:
            continue  # it lingers: the next signal
        return
    log.warning("process did not exit", extra={"pid": pid})


def main(argv: list[str]) -> int:
    """``python -m oplab.reader_server STORE [LOG_FILE]``: the keeper (started by :func:`reader_server`)."""
    if len(argv) not in (1, 2):
        sys.stderr.write("usage: python -m oplab.reader_server STORE [LOG_FILE]\n")
        return 2
    from events.structured_logging import configure_logging  # here: the readers importing this module need none of it

    configure_logging("kv", "INFO")  # the fields of its log calls, in the lines every lab process writes
    return keep(Path(argv[0]), Path(argv[1]) if len(argv) == 2 else None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

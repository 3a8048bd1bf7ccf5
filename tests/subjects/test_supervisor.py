"""The one supervisord client (subjects.supervisor): over TCP with the URL's credentials and over a
unix socket, supervisor's own fault codes and names, and a timeout on every call (a supervisord that
accepts the connection and never answers fails the call instead of hanging it)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from supervisor.xmlrpc import Faults

from events.waiting import wait_until_sync
from oplab.infra import free_port
from oplab.supervisor import supervisord_binary
from subjects.contract import SubjectError
from subjects.supervisor import (
    Supervisor,
    SupervisorControl,
    SupervisorFault,
    SupervisorTimeout,
    SupervisorUnreachable,
)
from tests.servers import silent_server

DEADLINE_S = 15.0
"""How long a call that must time out after 0.5 s may take before the test calls it hung."""


@dataclass
class Supervisord:
    tcp_url: str  # with the password
    unix_url: str
    password: str


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a unix socket's path must fit in ~100 bytes."""
    with tempfile.TemporaryDirectory(prefix="sv-", dir="/tmp") as path:
        yield Path(path)


@pytest.fixture
def supervisord(tmp_path: Path, short_dir: Path) -> Iterator[Supervisord]:
    """A real supervisord on 127.0.0.1 (with a password) and on a unix socket (without: its file
    mode guards it), running one program, ``sleeper``, not started."""
    password = secrets.token_urlsafe(8)
    port = free_port()
    sock = short_dir / "supervisor.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text("\n".join([
        "[supervisord]", f"logfile={tmp_path / 'supervisord.log'}", f"pidfile={tmp_path / 'supervisord.pid'}",
        f"childlogdir={tmp_path}", "nodaemon=false", "silent=true",
        "[inet_http_server]", f"port=127.0.0.1:{port}", "username=lab", f"password={password}",
        "[unix_http_server]", f"file={sock}", "chmod=0700",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "[program:sleeper]", f'command={sys.executable} -c "import time; time.sleep(600)"',
        "autostart=false", "autorestart=false", "startsecs=0", "stopwaitsecs=5",
    ]) + "\n")
    subprocess.run([supervisord_binary(), "-c", str(conf)], check=True)
    found = Supervisord(f"http://lab:{password}@127.0.0.1:{port}", f"unix://{sock}", password)
    client = Supervisor(found.tcp_url)
    wait_until_sync(client.alive, timeout=10, interval=0.05, what="supervisord up")
    try:
        yield found
    finally:
        client.shutdown()


def test_calls_reach_supervisord_over_tcp_with_the_urls_password_and_over_its_unix_socket(
        supervisord: Supervisord) -> None:
    tcp, unix = Supervisor(supervisord.tcp_url), Supervisor(supervisord.unix_url)
    tcp.start("sleeper")
    assert unix.process("sleeper")["statename"] == "RUNNING"
    assert [p["name"] for p in unix.processes()] == ["sleeper"]
    assert unix.stop("sleeper") is True
    assert tcp.stop("sleeper") is False  # not running any more: nothing to stop, no error
    assert tcp.process("sleeper")["statename"] == "STOPPED"


def test_a_path_after_the_address_is_kept_and_rpc2_is_the_default(supervisord: Supervisord) -> None:
    assert Supervisor(supervisord.tcp_url + "/RPC2").alive()
    assert not Supervisor(supervisord.tcp_url + "/elsewhere").alive()  # supervisord answers 404 there


def test_a_wrong_password_is_refused_and_never_shown(supervisord: Supervisord) -> None:
    wrong = Supervisor(supervisord.tcp_url.replace(supervisord.password, "not-the-password"))
    assert wrong.alive() is False
    with pytest.raises(SupervisorUnreachable, match="HTTP 401") as refused:
        wrong.processes()
    assert "not-the-password" not in str(refused.value)
    assert supervisord.password not in str(refused.value)


def test_faults_carry_supervisors_own_codes_and_names(supervisord: Supervisord) -> None:
    sup = Supervisor(supervisord.tcp_url)
    sup.start("sleeper")
    with pytest.raises(SupervisorFault) as already:
        sup.start("sleeper")
    assert (already.value.code, already.value.name) == (Faults.ALREADY_STARTED, "ALREADY_STARTED")
    assert sup.ensure_started("sleeper") is False  # ... which a restart counts as started
    with pytest.raises(SupervisorFault) as bad_signal:
        sup.signal("sleeper", "NOSUCHSIGNAL")
    assert (bad_signal.value.code, bad_signal.value.name) == (Faults.BAD_SIGNAL, "BAD_SIGNAL")  # 11, not 90
    with pytest.raises(SupervisorFault, match="no program named 'nosuch'") as unknown:
        sup.process("nosuch")
    assert (unknown.value.code, unknown.value.name) == (Faults.BAD_NAME, "BAD_NAME")
    with pytest.raises(SupervisorFault, match="BAD_NAME"):  # an unknown program is an error for both
        sup.ensure_started("nosuch")
    with pytest.raises(SupervisorFault, match="BAD_NAME"):
        sup.stop("nosuch")


async def test_a_subjects_control_says_what_it_did(supervisord: Supervisord) -> None:
    control = SupervisorControl(supervisord.unix_url)
    assert await control.start("sleeper") == "started"
    assert await control.start("sleeper") == "already running"
    assert await control.pid("sleeper")
    assert await control.stop("sleeper") == "stopped"
    assert await control.stop("sleeper") == "not running"
    assert await control.pid("sleeper") is None
    with pytest.raises(SubjectError, match="sleeper is not running"):
        await control.kill("sleeper")


def _outcome(call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` in a daemon thread and wait for it at most :data:`DEADLINE_S`: what it raised
    (None if it returned). A call still running then fails the test (and its thread is left behind)."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            raised.append(None)
        except BaseException as exc:  # handed to the test, which asserts on it
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    assert raised, f"the call was still waiting after {DEADLINE_S}s: no timeout"
    return raised[0]


@pytest.mark.parametrize("over", ["tcp", "unix"])
def test_a_supervisord_that_never_answers_fails_each_call_within_the_timeout(over: str, short_dir: Path) -> None:
    with silent_server(None if over == "tcp" else short_dir / "hung.sock") as address:
        url = f"http://lab:pw@{address}" if over == "tcp" else f"unix://{address}"
        sup = Supervisor(url, timeout_s=0.5)
        for call in (sup.alive, sup.processes, lambda: sup.signal("node-1", "KILL")):
            raised = _outcome(call)
            assert isinstance(raised, SupervisorTimeout), raised
            assert f"supervisord at {address} did not answer" in str(raised)
        control = SupervisorControl(url, timeout_s=0.5)
        raised = _outcome(lambda: asyncio.run(control.state("node-1")))
        assert isinstance(raised, SupervisorTimeout), raised


def test_nothing_listening_is_not_alive_and_a_call_says_unreachable() -> None:
    sup = Supervisor(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    assert sup.alive() is False
    with pytest.raises(SupervisorUnreachable, match=r"unreachable .*ConnectionRefusedError"):
        sup.processes()


def test_only_http_and_unix_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="http:// or unix://"):
        Supervisor("https://127.0.0.1:9001")

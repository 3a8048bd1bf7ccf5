"""The lab's supervisord: restarts stay correct while supervisord restarts a crashed program itself,
and a supervisord that never answers fails `oplab status` and `oplab down` with a clear error instead
of hanging them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.waiting import wait_until_sync
from oplab.infra import free_port
from oplab.probes import pid_alive, read_pid
from oplab.settings import LabSettings
from oplab.stack import Stack, StackError, StackInfo
from oplab.supervisor import Program, Supervisor, SupervisorFault, render_config, supervisord_binary
from tests.servers import silent_server

OPLAB = str(Path(sys.executable).parent / "oplab")
DEADLINE_S = 60.0
"""How long an `oplab` command facing a hung supervisord (1 s per call) may take before the test
calls it hung: the command's own start-up is most of it."""


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    (tmp_path / "logs").mkdir()
    url = f"http://lab:{secrets.token_urlsafe(8)}@127.0.0.1:{free_port()}"
    # under load a stop right after the start once took supervisord's whole stopwaitsecs before its SIGKILL
    # (the SIGTERM probably landed before the exec, while the child still had supervisord's handlers): 2 s
    sleeper = Program("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], priority=10,
                      stopwaitsecs=2)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(render_config(tmp_path, url, [sleeper]))
    subprocess.run([supervisord_binary(), "-c", str(conf)], check=True)
    client = Supervisor(url)
    wait_until_sync(client.alive, timeout=10, interval=0.05, what="supervisord up")
    try:
        yield client
    finally:
        pid = read_pid(tmp_path / "supervisord.pid")
        client.shutdown()
        if pid is not None:  # gone before the next test's supervisord starts
            wait_until_sync(lambda: not pid_alive(pid), timeout=30, interval=0.05, what="supervisord gone")


def _state(sup: Supervisor) -> str:
    return str(sup.process("sleeper")["statename"])


def test_starting_a_program_supervisord_already_started_counts_as_started(sup: Supervisor) -> None:
    sup.start("sleeper")
    assert _state(sup) == "RUNNING"
    with pytest.raises(SupervisorFault, match="ALREADY_STARTED"):  # the raw call refuses ...
        sup.start("sleeper")
    assert sup.ensure_started("sleeper") is False  # ... a restart does not
    assert _state(sup) == "RUNNING"


def test_stopping_a_program_that_already_exited_counts_as_stopped(sup: Supervisor) -> None:
    sup.start("sleeper")
    assert sup.stop("sleeper") is True
    assert _state(sup) == "STOPPED"
    assert sup.stop("sleeper") is False
    assert _state(sup) == "STOPPED"


def test_an_unknown_program_is_still_an_error(sup: Supervisor) -> None:
    with pytest.raises(SupervisorFault, match="BAD_NAME"):
        sup.ensure_started("nosuch")
    with pytest.raises(SupervisorFault, match="BAD_NAME"):
        sup.stop("nosuch")


def _stack_on(home: Path, supervisor_url: str) -> None:
    """A stack file as `oplab up` writes it, for a stack whose supervisord is at ``supervisor_url``."""
    home.mkdir(parents=True)
    StackInfo(run="r20261130t120000-abcd", subject="ratelimiter", nats_url="nats://127.0.0.1:1",
              supervisor_url=supervisor_url, fault="node_kill", mode="auto", embedded_nats=False,
              started_at=0.0, subject_env={}, endpoints={}).save(LabSettings(home=home).stack_file)


def test_a_hung_supervisord_is_an_error_of_the_stack_not_a_stack_that_is_down(tmp_path: Path) -> None:
    with silent_server() as address:
        home = tmp_path / "oplab"
        _stack_on(home, f"http://lab:secret-pw@{address}")
        stack = Stack(LabSettings(home=home, supervisor_timeout_s=0.5))
        with pytest.raises(StackError, match=f"supervisord at {address} did not answer") as hung:
            stack.require()
        assert "supervisord.pid" in str(hung.value) and "secret-pw" not in str(hung.value)


def test_oplab_status_and_down_fail_with_a_clear_error_when_supervisord_never_answers(tmp_path: Path) -> None:
    with silent_server() as address:
        home = tmp_path / "oplab"
        _stack_on(home, f"http://lab:secret-pw@{address}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
        env |= {"OPLAB_HOME": str(home), "OPLAB_SUPERVISOR_TIMEOUT_S": "1"}
        for command in ("status", "down"):
            # a deadline on the command, not a measurement: without a timeout it would wait for ever
            result = subprocess.run([OPLAB, command], env=env, capture_output=True, text=True, timeout=DEADLINE_S)
            assert result.returncode == 1, (command, result.stdout, result.stderr)
            assert f"error: supervisord at {address} did not answer supervisor.getState within 1s" in result.stderr
            assert "Traceback" not in result.stderr and "secret-pw" not in result.stderr

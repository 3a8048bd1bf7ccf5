"""The supervisord client: restarts stay correct while supervisord restarts a crashed program itself."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from oplab.infra import free_port
from oplab.supervisor import Program, Supervisor, render_config, supervisord_binary


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    (tmp_path / "logs").mkdir()
    url = f"http://lab:{secrets.token_urlsafe(8)}@127.0.0.1:{free_port()}"
    sleeper = Program("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"], priority=10)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(render_config(tmp_path, url, [sleeper]))
    subprocess.run([supervisord_binary(), "-c", str(conf)], check=True)
    client = Supervisor(url)
    deadline = time.monotonic() + 10
    while not client.alive():
        assert time.monotonic() < deadline, "supervisord did not come up"
        time.sleep(0.05)  # polling another process's readiness under a deadline
    try:
        yield client
    finally:
        client.shutdown()


def _state(sup: Supervisor) -> str:
    return str(sup._proxy().getProcessInfo("sleeper")["statename"])


def test_starting_a_program_supervisord_already_started_counts_as_started(sup: Supervisor) -> None:
    sup.start("sleeper")
    assert _state(sup) == "RUNNING"
    with pytest.raises(xmlrpc.client.Fault):  # the raw call refuses ...
        sup.start("sleeper")
    sup.ensure_started("sleeper")  # ... a restart does not
    assert _state(sup) == "RUNNING"


def test_stopping_a_program_that_already_exited_counts_as_stopped(sup: Supervisor) -> None:
    sup.start("sleeper")
    sup.stop("sleeper")
    assert _state(sup) == "STOPPED"
    sup.stop("sleeper")
    assert _state(sup) == "STOPPED"


def test_an_unknown_program_is_still_an_error(sup: Supervisor) -> None:
    with pytest.raises(xmlrpc.client.Fault, match="BAD_NAME"):
        sup.ensure_started("nosuch")
    with pytest.raises(xmlrpc.client.Fault, match="BAD_NAME"):
        sup.stop("nosuch")

"""Reading a stopped lab's log leaves nothing behind, and readers of one home share one server.

Real processes throughout: the ``oplab`` CLI as a subprocess (the console in a tmux pane, a real
terminal), on a fresh lab home holding one imported run and no stack. A server is found by its
command line naming the home's store (:func:`oplab.reader_server.servers_on_store`). Another
process's exit has no event to wait on here: the checks poll under a deadline.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from events.waiting import wait_until_sync
from oplab.infra import start_nats
from oplab.reader_server import KEEPER_MODULE, STATE, servers_on_store
from oplab.settings import LabSettings
from oplab.stack import Stack
from tests.console.test_tmux import Pane
from tests.test_old_runs import FIXTURE, OPLAB, RUN, oplab

DEADLINE_S = 15.0
PROBE = """
import asyncio, sys
from oplab.access import lab_nats_url
from oplab.history import list_runs
from oplab.settings import LabSettings
with lab_nats_url(LabSettings()) as url:
    print(url, flush=True)
    for _ in sys.stdin:
        print(",".join(r["run"] for r in asyncio.run(list_runs(url))), flush=True)
"""
"""A reader that stays: it prints its URL, then lists the runs each time it reads a line."""

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Another process's state: polled (every 0.05 s) under a deadline; WaitTimeout naming ``what``."""
    wait_until_sync(check, timeout=timeout_s, interval=0.05, what=what)


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    return {**env, "OPLAB_HOME": str(home)}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A fresh lab home holding one imported run, no stack, no server: the state after `oplab down`."""
    home = tmp_path / "oplab"
    result = oplab("import", str(FIXTURE), home=home)
    assert result.returncode == 0, result.stderr
    yield home
    for pid in servers_on_store(home / "nats"):  # a failed test must not leave its server either
        os.kill(pid, signal.SIGKILL)


def store_servers(home: Path) -> list[int]:
    return servers_on_store(home / "nats")


def no_server_left(home: Path) -> None:
    wait_until(lambda: not store_servers(home), f"no nats-server on {home / 'nats'}")


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    pane = Pane("reader", tmp_path / "tmux.sock")
    yield pane
    pane.tmux("kill-server", check=False)


def open_replay(pane: Pane, home: Path) -> int:
    """`oplab console --replay --speed 0` (the final screen at once) in a 120x40 terminal; returns the
    CLI's pid. The shell stays after it, to show its exit status and the terminal it left."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in environment(home).items() if k in ("OPLAB_HOME", "PATH"))
    command = (f"env -u NATS_URL -u OPLAB_NATS_URL {env} {shlex.quote(OPLAB)} console --run {RUN} --replay --speed 0; "
               "echo exit=$?; sleep 600")
    pane.tmux("new-session", "-d", "-s", pane.session, "-x", "120", "-y", "40", "sh", "-c", command)
    wait_until(lambda: "resolved by agent" in pane.text(), "the replay on screen")
    shell = int(pane.tmux("display", "-p", "-t", pane.session, "#{pane_pid}").stdout)
    [cli] = [int(p) for p in subprocess.run(["pgrep", "-P", str(shell)], capture_output=True,
                                              text=True).stdout.split()]
    return cli


def test_listing_a_stopped_labs_events_leaves_no_server_behind(home: Path) -> None:
    listed = oplab("events", RUN, "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 108
    no_server_left(home)
    assert not (home / "nats" / STATE).exists()


@needs_tmux
@pytest.mark.parametrize("way_out", ["q", "ctrl-c", "terminal closed", "SIGTERM", "SIGKILL"])
def test_the_replay_console_leaves_no_server_behind_however_it_ends(home: Path, pane: Pane,
                                                                  way_out: str) -> None:
    cli = open_replay(pane, home)
    assert len(store_servers(home)) == 1
    if way_out == "q":
        pane.keys("q")
    elif way_out == "ctrl-c":
        pane.keys("C-c")
    elif way_out == "terminal closed":  # tmux hangs the terminal up: SIGHUP to the CLI
        pane.tmux("kill-session", "-t", pane.session)
    else:
        os.kill(cli, getattr(signal, way_out))
    no_server_left(home)
    wait_until(lambda: not Path(f"/proc/{cli}").exists(), "the CLI exited")


@needs_tmux
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signalled_console_restores_the_terminal(home: Path, pane: Pane, sig: signal.Signals,
                                                   status: int) -> None:
    cli = open_replay(pane, home)
    assert pane.tmux("display", "-p", "-t", pane.session, "#{alternate_on}").stdout.strip() == "1"
    os.kill(cli, sig)
    wait_until(lambda: f"exit={status}" in pane.text(), f"the shell shows exit={status}")
    assert pane.tmux("display", "-p", "-t", pane.session, "#{alternate_on}").stdout.strip() == "0"
    assert "Operator Lab" not in pane.text()  # the console's screen is gone, the shell's is back
    no_server_left(home)


@needs_tmux
def test_a_second_reader_reuses_the_server_and_keeps_it_when_the_first_is_killed(home: Path, pane: Pane) -> None:
    first = open_replay(pane, home)
    [server] = store_servers(home)
    probe = subprocess.Popen([sys.executable, "-c", PROBE], env=environment(home), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert probe.stdin is not None and probe.stdout is not None
    try:
        url = probe.stdout.readline().strip()
        assert url == json.loads((home / "nats" / STATE).read_text())["url"]
        assert store_servers(home) == [server]  # no rival on the store
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not Path(f"/proc/{first}").exists(), "the first reader is gone")
        probe.stdin.write("runs?\n")
        probe.stdin.flush()
        assert probe.stdout.readline().strip() == RUN  # the second still reads
        assert store_servers(home) == [server]
    finally:
        probe.stdin.close()
        assert probe.wait(DEADLINE_S) == 0
    no_server_left(home)  # the last reader out stopped it
    again = oplab("events", RUN, "--type", "ticket.resolved", "--json", home=home)
    assert again.returncode == 0 and json.loads(again.stdout)["type"] == "ticket.resolved"
    no_server_left(home)


def test_readers_started_together_share_one_server(home: Path) -> None:
    probes = [subprocess.Popen([sys.executable, "-c", PROBE], env=environment(home), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        urls = {p.stdout.readline().strip() for p in probes if p.stdout is not None}
        assert len(urls) == 1 and len(store_servers(home)) == 1
    finally:
        for p in probes:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(DEADLINE_S)
    no_server_left(home)


def test_a_killed_keeper_takes_its_server_with_it(home: Path) -> None:
    probe = subprocess.Popen([sys.executable, "-c", PROBE], env=environment(home), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert probe.stdin is not None and probe.stdout is not None
    try:
        probe.stdout.readline()
        keeper = json.loads((home / "nats" / STATE).read_text())["keeper"]
        assert KEEPER_MODULE in Path(f"/proc/{keeper}/cmdline").read_text()
        os.kill(keeper, signal.SIGKILL)  # no clean-up of its own: the kernel's PR_SET_PDEATHSIG acts
        no_server_left(home)
    finally:
        probe.stdin.close()
        probe.wait(DEADLINE_S)
    listed = oplab("events", RUN, "--type", "run.finished", home=home)  # the next reader starts afresh
    assert listed.returncode == 0 and "run.finished" in listed.stdout, listed.stderr
    no_server_left(home)


def test_a_server_left_on_the_store_without_a_keeper_is_read_through_and_down_stops_it(home: Path) -> None:
    leftover = start_nats(home / "nats")  # what an older oplab's reader left when its terminal closed
    try:
        listed = oplab("events", RUN, "--type", "run.finished", home=home)
        assert listed.returncode == 0 and "run.finished" in listed.stdout, listed.stderr
        assert store_servers(home) == [leftover.process.pid]  # read through it: no rival on the store
        assert not (home / "nats" / STATE).exists()
        down = oplab("down", home=home)
        assert down.returncode == 0, down.stderr
        assert "stopped the nats-server reading the lab's store" in down.stderr
        assert leftover.process.wait(DEADLINE_S) is not None
        no_server_left(home)
    finally:
        leftover.stop()


@pytest.mark.e2e
def test_oplab_up_stops_the_readers_server_and_serves_the_store_itself(home: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    probe = subprocess.Popen([sys.executable, "-c", PROBE], env=environment(home), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert probe.stdin is not None and probe.stdout is not None
    for name in ("NATS_URL", "OPLAB_NATS_URL", "REDIS_URL", "OPLAB_HOME"):
        monkeypatch.delenv(name, raising=False)
    stack = Stack(LabSettings(home=home))
    try:
        probe.stdout.readline()
        assert len(store_servers(home)) == 1  # the reader's
        info = stack.up(fault="node_kill", mode="interactive")
        assert store_servers(home) == []  # the lab's own NATS holds the store now, alone
        runs = oplab("runs", "--json", home=home)
        assert runs.returncode == 0, runs.stderr
        assert {r["run"] for r in json.loads(runs.stdout)} == {RUN, info.run}  # the old run, on the lab's NATS
    finally:
        probe.stdin.close()
        probe.wait(DEADLINE_S)
        stack.down()
    again = oplab("events", RUN, "--type", "run.finished", home=home)  # after down: a reader again
    assert again.returncode == 0 and "run.finished" in again.stdout, again.stderr
    no_server_left(home)

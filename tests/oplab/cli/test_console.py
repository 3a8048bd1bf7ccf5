"""`oplab console --run R --replay [--speed N] [--from X]`, run as a user runs it.

The real recorded run (tests/fixtures/v1-node-kill-claude.jsonl) is stored on the test NATS under a
fresh run id. Bad usage is refused before any screen opens. The paced replay is driven with keys in
a real terminal (tmux), and the pane is polled against deadlines.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from console.replay import Recorded
from events.bus import Bus
from oplab.infra import RunningServer
from tests.console.recorded import store_history
from tests.console.test_tmux import Pane

OPLAB = str(Path(sys.executable).parent / "oplab")
DEADLINE_S = 15.0
POSITION = re.compile(r"REPLAY #(\d+) ")


def cli_env(nats_server: RunningServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    return {**env, "NATS_URL": nats_server.url, "OPLAB_HOME": str(tmp_path / "oplab")}


def oplab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPLAB, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
async def history(bus: Bus, run_id: str) -> list[Recorded]:
    return await store_history(bus, run_id)


def test_speed_or_from_without_replay_is_bad_usage(nats_server: RunningServer, tmp_path: Path) -> None:
    done = oplab(cli_env(nats_server, tmp_path), "console", "--run", "r-any", "--speed", "2")
    assert done.returncode == 2 and "add --replay" in done.stderr


def test_a_negative_speed_is_bad_usage(nats_server: RunningServer, tmp_path: Path) -> None:
    done = oplab(cli_env(nats_server, tmp_path), "console", "--run", "r-any", "--replay", "--speed", "-1")
    assert done.returncode == 2


async def test_a_start_that_names_nothing_in_the_run_is_refused_naming_its_chapters(
        nats_server: RunningServer, tmp_path: Path, run_id: str, history: list[Recorded]) -> None:
    done = await asyncio.to_thread(oplab, cli_env(nats_server, tmp_path), "console", "--run", run_id, "--replay",
                                   "--from", "the-end")
    assert done.returncode == 2, done.stderr
    assert "'the-end' is no chapter of run" in done.stderr and "4 detection" in done.stderr


def test_replaying_a_run_without_events_says_so(nats_server: RunningServer, tmp_path: Path, run_id: str) -> None:
    done = oplab(cli_env(nats_server, tmp_path), "console", "--run", run_id, "--replay")
    assert done.returncode == 1 and f"run {run_id} has no events in the log" in done.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
async def test_the_console_program_plays_from_a_chapter_pauses_steps_and_jumps(
        nats_server: RunningServer, tmp_path: Path, run_id: str, history: list[Recorded]) -> None:
    pane = Pane("replay", tmp_path / "tmux.sock")
    rc_file = tmp_path / "rc"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in cli_env(nats_server, tmp_path).items()
                   if k in ("NATS_URL", "OPLAB_HOME"))
    command = (f"env -u OPLAB_NATS_URL {env} {shlex.quote(OPLAB)} console --run {run_id} --replay --speed 0.25 "
               f"--from detection; echo $? > {shlex.quote(str(rc_file))}")
    pane.tmux("new-session", "-d", "-s", pane.session, "-x", "80", "-y", "24", "sh", "-c", command)
    seqs = [r.seq for r in history]
    try:
        screen = await pane.wait_for("4/7 · Detection")
        assert "node_kill node-1" in screen and "x0.25" in screen
        pane.keys("Space")
        screen = await pane.wait_for("PAUSED")
        match = POSITION.search(screen)
        assert match is not None, screen
        paused_at = int(match.group(1))
        pane.keys("Right")
        await pane.wait_for(f"REPLAY #{seqs[seqs.index(paused_at) + 1]} ")
        pane.keys("n")
        await pane.wait_for("5/7 · Remediation")
        pane.keys(*"+" * 8)
        await pane.wait_for("x64 PAUSED")
        pane.keys("Space")
        screen = await pane.wait_for(" END ")
        assert f"REPLAY #{seqs[-1]} " in screen and "7/7 · Summary" in screen
        pane.keys("q")
        status = await pane.wait(lambda: rc_file.exists() and rc_file.read_text().strip(), "console exited after q",
                                 DEADLINE_S)
        assert status == "0"
    finally:
        pane.tmux("kill-server", check=False)

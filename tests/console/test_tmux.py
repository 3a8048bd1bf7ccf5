"""Smoke test: the real console program in a real terminal (tmux), fed by the real bus.

The pane is read with ``tmux capture-pane``; waiting polls it against a
deadline (there is no event to wait on in another process's terminal).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from events.bus import Bus
from events.waiting import WaitTimeout, wait_until
from oplab.infra import RunningServer
from tests.console.script import node_kill_story

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

DEADLINE_S = 15.0
T = TypeVar("T")


class Pane:
    def __init__(self, session: str, socket: Path) -> None:
        self.session = session
        self.socket = socket

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True, text=True,
                              check=check, timeout=10)

    def text(self) -> str:
        result = self.tmux("capture-pane", "-p", "-t", self.session, check=False)
        return result.stdout

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", self.session, check=False).returncode == 0

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    async def wait(self, check: Callable[[], T], what: str, timeout_s: float = DEADLINE_S) -> T:
        """``check``'s first truthy answer, polled (another process's terminal sends no event); at the
        deadline, an AssertionError saying ``what`` did not happen and showing the screen."""
        try:
            return await wait_until(check, timeout=timeout_s, interval=0.05, what=what)
        except WaitTimeout as timeout:
            raise AssertionError(f"{timeout}:\n{self.text()}") from None

    async def wait_for(self, needle: str, timeout_s: float = DEADLINE_S) -> str:
        """The screen, once it shows ``needle``."""

        def showing() -> str | None:
            text = self.text()
            return text if needle in text else None

        return await self.wait(showing, f"{needle!r} on screen", timeout_s)


@pytest.fixture
async def console_pane(request: pytest.FixtureRequest, nats_server: RunningServer, run_id: str,
                       tmp_path: Path) -> AsyncIterator[tuple[Pane, Path]]:
    cols, rows = request.param
    socket = tmp_path / "tmux.sock"
    pane = Pane("console", socket)
    rc_file = tmp_path / "rc"
    command = (f"{shlex.quote(sys.executable)} -m console --run {run_id} --nats-url {nats_server.url} "
               f"--log-file {shlex.quote(str(tmp_path / 'console.log'))}; echo $? > {shlex.quote(str(rc_file))}")
    pane.tmux("new-session", "-d", "-s", pane.session, "-x", str(cols), "-y", str(rows),
              "sh", "-c", command)
    try:
        yield pane, rc_file
    finally:
        pane.tmux("kill-server", check=False)


@pytest.mark.parametrize("console_pane", [(80, 24), (200, 60)], indirect=True)
async def test_console_program_shows_a_run_and_quits_on_q(console_pane: tuple[Pane, Path], bus: Bus,
                                                          run_id: str) -> None:
    pane, rc_file = console_pane
    await pane.wait_for(f"Waiting for events of run {run_id}")
    await bus.publish_batch(node_kill_story(run_id).events)
    screen = await pane.wait_for("resolved by agent (agent-1)")
    assert "3/7 · Fault injection" in screen
    assert "tk-1 resolved" in screen
    pane.keys("Space")
    await pane.wait_for("next failed: CommandError")  # no director in this test: said, not raised
    pane.keys("q")
    status = await pane.wait(lambda: rc_file.exists() and rc_file.read_text().strip(), "console exited after q")
    assert status == "0"

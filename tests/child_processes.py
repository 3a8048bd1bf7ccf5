"""Child processes a fixture starts for its test (``asyncio`` subprocesses), and how it ends those the
test left running."""

from __future__ import annotations

import asyncio


class Children:
    """The child processes a fixture started; ``kill_running`` (its teardown) kills and reaps each one
    that has not exited, so no test leaves a process behind."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    def add(self, proc: asyncio.subprocess.Process) -> asyncio.subprocess.Process:
        """Keep ``proc`` for the teardown; ``proc``."""
        self.procs.append(proc)
        return proc

    async def kill_running(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

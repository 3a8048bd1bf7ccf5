"""A run under Docker Compose: the lab's services and their subject as one compose project.

A subject whose members are reachable only inside a compose network (TiKV: each store
advertises ``tikvN:20160``) deploys as a :class:`~subjects.contract.ComposeProject`. The
launcher then drives the ``docker compose`` CLI (Compose v2 has no Python API; the docker SDK
speaks to the engine, not to compose files) in three steps, each of which fails with a message
naming Docker rather than hanging:

1. ``docker compose version``: the compose plug-in exists;
2. ``pull --policy missing``: every image is here or can be had, *before* anything starts, so
   an unreachable registry leaves nothing behind;
3. ``up -d --build``: the project's profile starts; on any failure it is brought ``down`` again.

Everything the project needs to be found again (``status``, ``restart``, ``down`` from another
shell) is its file and the few variables that select the profile, the run, the published NATS port
and the NATS users' passwords: :attr:`ComposeRun.saved` goes into ``stack.json`` (owner-only).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subjects.contract import ComposeProject

Progress = Callable[[str], None]


class ComposeFailed(RuntimeError):
    """A ``docker compose`` step failed; the message says which and why, and what to do."""


@dataclass(frozen=True)
class ComposeRun:
    """One run's compose project: its file and the variables it is started with.

    ``COMPOSE_FILE`` and ``COMPOSE_PROJECT_NAME``, when set, are compose's own (an override file
    beside the project's, another project name) and are kept for every later step."""

    file: Path
    variables: dict[str, str]

    @classmethod
    def plan(cls, project: ComposeProject, *, run: str, nats_port: int, fault: str, mode: str,
             nats_auth: str = "") -> ComposeRun:
        """``nats_auth``: the NATS users' passwords (JSON) the project's ``nats-auth`` writes."""
        variables = {
            "COMPOSE_PROFILES": project.profile,
            project.run_variable: run,
            project.nats_port_variable: str(nats_port),
            "OPLAB_FAULT": fault,
            "OPLAB_DIRECTOR_MODE": mode,
            "OPLAB_NATS_AUTH": nats_auth,
        }
        for name in ("COMPOSE_PROJECT_NAME", "COMPOSE_FILE"):  # the project brought up is the one brought down
            if os.environ.get(name):
                variables[name] = os.environ[name]
        return cls(file=project.file, variables=variables)

    @property
    def saved(self) -> dict[str, Any]:
        return {"file": str(self.file), "variables": dict(self.variables)}

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> ComposeRun:
        return cls(file=Path(saved["file"]), variables=dict(saved["variables"]))


class Compose:
    """The ``docker compose`` CLI on one run's project."""

    def __init__(self, run: ComposeRun, *, up_timeout_s: float = 600.0) -> None:
        self.run = run
        self.up_timeout_s = up_timeout_s

    def check(self) -> None:
        """The compose plug-in answers (the engine itself the subject's provisioner has checked)."""
        try:
            self._call(["version"], timeout=15.0)
        except ComposeFailed as exc:
            raise ComposeFailed(f"Docker Compose v2 (`docker compose`) is needed for this subject: {exc}") from None

    def pull(self, progress: Progress) -> None:
        """Pull the images that are neither here nor built by the project."""
        progress("checking the project's images (docker compose pull --policy missing)")
        try:
            self._call(["pull", "--ignore-buildable", "--policy", "missing", "--quiet"], timeout=self.up_timeout_s)
        except ComposeFailed as exc:
            raise ComposeFailed(f"Docker could not get the images of {self.describe()}: {exc}. Load them into "
                                "this engine (`docker load`) or use a registry it can reach; nothing was started"
                                ) from None

    def up(self, progress: Progress) -> None:
        """Build the lab's image and start the profile, waiting on its healthchecks' dependencies."""
        progress(f"starting {self.describe()} (docker compose up -d --build): the first build takes minutes")
        try:
            self._call(["up", "-d", "--build", "--remove-orphans"], timeout=self.up_timeout_s, progress=progress)
        except ComposeFailed as exc:
            raise ComposeFailed(f"Docker could not start {self.describe()}: {exc}") from None

    def down(self, progress: Progress) -> None:
        progress(f"stopping {self.describe()} (docker compose down; volumes are kept)")
        self._call(["down", "--remove-orphans"], timeout=120.0)

    def containers(self) -> list[dict[str, Any]]:
        """The project's containers of this profile (``docker compose ps --all``), one dict each."""
        out = self._call(["ps", "--all", "--format", "json"], timeout=30.0)
        rows: list[dict[str, Any]] = []
        for line in out.splitlines():  # one JSON object per line (a JSON array before compose 2.21)
            doc = json.loads(line) if line.strip() else []
            rows.extend(doc if isinstance(doc, list) else [doc])
        return rows

    def running(self) -> bool:
        try:
            return any(row.get("State") == "running" for row in self.containers())
        except (ComposeFailed, ValueError):
            return False

    def restart(self, service: str) -> None:
        self._call(["restart", service], timeout=120.0)

    def describe(self) -> str:
        files = self.run.variables.get("COMPOSE_FILE", str(self.run.file))
        return f"the compose project {files} (profile {self.run.variables.get('COMPOSE_PROFILES')})"

    def _call(self, args: list[str], *, timeout: float, progress: Progress | None = None) -> str:
        files = [] if "COMPOSE_FILE" in self.run.variables else ["-f", str(self.run.file)]
        command = ["docker", "compose", *files, *args]
        env = {**os.environ, **self.run.variables}
        try:
            with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  cwd=self.run.file.parent) as proc:
                lines = _read_lines(proc, timeout, progress)
        except FileNotFoundError:
            raise ComposeFailed("no `docker` command on PATH") from None
        if proc.returncode != 0:
            last = next((line for line in reversed(lines) if line.strip()), f"exit status {proc.returncode}")
            raise ComposeFailed(last.strip())
        return "\n".join(lines)


def _read_lines(proc: subprocess.Popen[str], timeout: float, progress: Progress | None) -> list[str]:
    """Every line the command writes (each distinct one passed on to ``progress``: compose repeats
    a container's state while it waits on it), killing the command at ``timeout``."""
    lines: list[str] = []
    shown: set[str] = set()
    timer = _Deadline(proc, timeout)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if progress is not None and line.strip() and line.strip() not in shown:
                shown.add(line.strip())
                progress(f"  {line.strip()}")
        proc.wait()
    finally:
        timer.cancel()
    if timer.fired:
        lines.append(f"no answer within {timeout:.0f}s")
    return lines


class _Deadline:
    """Kills a process still running after ``timeout`` seconds (its output is read meanwhile)."""

    def __init__(self, proc: subprocess.Popen[str], timeout: float) -> None:
        self.fired = False
        self._proc = proc
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        self._proc.kill()

    def cancel(self) -> None:
        self._timer.cancel()

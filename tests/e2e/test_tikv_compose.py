"""`oplab demo --subject tikv` driving the compose project, on a real Docker engine (``DOCKER_HOST``;
skipped when none answers).

PingCAP's images cannot be pulled here, so the whole run uses the repository's compose file with
``tests/fakes/tikv/docker-compose.double.yml`` over it: the PD double and the store doubles as
containers, the lab's services as the real compose file declares them, chaos and the agent on the
engine's own socket. And images that cannot be had fail the command within seconds, naming Docker,
with nothing left running."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from subjects.tikv.provisioner import docker_answers

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
OPLAB = str(Path(sys.executable).parent / "oplab")
BASE_IMAGE = "python:3.11-slim"  # the lab's image and the doubles' are built on it


def _engine() -> Any:
    import docker

    problem = docker_answers(2.0)
    if problem is not None:
        pytest.skip(f"no Docker engine answers ({problem}): start one, or point DOCKER_HOST at one")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no `docker compose` (Compose v2) on PATH")
    return docker.from_env(timeout=30)


@pytest.fixture
def project() -> Iterator[tuple[str, Any]]:
    """A compose project name of this test's own; every container and network of it removed after."""
    client = _engine()
    name = f"oplab-test-{secrets.token_hex(3)}"
    try:
        yield name, client
    finally:
        label = f"com.docker.compose.project={name}"
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for network in client.networks.list(filters={"label": label}):
            network.remove()
        for volume in client.volumes.list(filters={"label": label}):
            volume.remove(force=True)
        client.close()


def _env(tmp_path: Path, project: str, compose_file: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPLAB_", "COMPOSE_"))}
    env.update(OPLAB_HOME=str(tmp_path / "oplab"), COMPOSE_PROJECT_NAME=project, COMPOSE_FILE=compose_file)
    return env


def _left_running(client: Any, project: str) -> list[str]:
    label = f"com.docker.compose.project={project}"
    return [c.name for c in client.containers.list(all=True, filters={"label": label})]


def test_images_that_cannot_be_pulled_fail_within_seconds_naming_docker_and_start_nothing(
        tmp_path: Path, project: tuple[str, Any]) -> None:
    name, client = project
    unpullable = tmp_path / "unpullable.yml"  # a registry that refuses at once, with or without internet
    unpullable.write_text("services:\n  pd0:\n    image: 127.0.0.1:1/oplab-unpullable:never\n")
    env = _env(tmp_path, name, f"{REPO / 'docker-compose.yml'}:{unpullable}")
    result = subprocess.run([OPLAB, "demo", "--headless", "--subject", "tikv"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Docker could not get the images of the compose project" in result.stderr
    assert "nothing was started" in result.stderr and "Traceback" not in result.stderr
    assert _left_running(client, name) == []
    assert not (tmp_path / "oplab" / "stack.json").exists()


def test_the_tikv_demo_runs_under_compose_and_the_run_is_kept_in_the_local_log(
        tmp_path: Path, project: tuple[str, Any]) -> None:
    name, client = project
    import docker

    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"image {BASE_IMAGE} is not on this engine (pull or load it first)")
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip(f"the double's compose file mounts the engine's socket; DOCKER_HOST is {host}")
    files = f"{REPO / 'docker-compose.yml'}:{REPO / 'tests/fakes/tikv/docker-compose.double.yml'}"
    env = {**_env(tmp_path, name, files), "DOCKER_SOCK": host.removeprefix("unix://")}
    result = subprocess.run([OPLAB, "demo", "--headless", "--subject", "tikv", "--fault", "store_kill"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["subject"], summary["outcome"], summary["resolved_by"]) == ("tikv", "resolved", "agent")
    assert _left_running(client, name) == []  # the project went down with the demo

    # the run's events were copied out of the project's NATS before it went down
    env.pop("COMPOSE_FILE")
    events = subprocess.run([OPLAB, "events", summary["run"], "--json"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert events.returncode == 0, events.stderr
    types = [json.loads(line)["type"] for line in events.stdout.splitlines() if line.strip()]
    assert {"chaos.fault_injected", "ticket.opened", "ticket.action_executed", "ticket.resolved",
            "run.finished"} <= set(types)

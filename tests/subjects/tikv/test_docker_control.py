"""The Docker faults' verbs against a real Docker engine (``DOCKER_HOST``; skipped when none answers):
only the compose project's containers are touched, and an engine that does not answer is a clear error.

It needs only the ``python:3.11-slim`` image, which any Docker host can pull (machines without a
registry load a local stand-in of it)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from events.waiting import wait_until
from subjects.contract import RefusedError, SubjectError
from subjects.tikv.control import DockerControl
from subjects.tikv.provisioner import docker_answers
from subjects.tikv.settings import TiKVSettings

IMAGE = "python:3.11-slim"


def _engine() -> Any:
    import docker

    if docker_answers(2.0) is not None:
        pytest.skip(f"no Docker engine answers ({docker_answers(2.0)}): start one, or point DOCKER_HOST at one")
    client = docker.from_env(timeout=30)
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"image {IMAGE} is not on this engine (pull or load it first)")
    return client


@pytest.fixture
def project() -> Iterator[tuple[str, Any]]:
    client = _engine()
    name = f"oplab-test-{secrets.token_hex(3)}"
    network = client.networks.create(f"{name}_default", labels={"com.docker.compose.project": name})
    containers = []
    for project, service in ((name, "tikv1"), (f"{name}-other", "tikv1")):
        labels = {"com.docker.compose.project": project, "com.docker.compose.service": service}
        container = client.containers.run(IMAGE, ["sleep", "infinity"], detach=True, labels=labels,
                                          name=f"{project}-{service}", network=network.name)
        containers.append(container)
    try:
        yield name, client
    finally:
        for container in containers:
            container.remove(force=True)
        network.remove()
        client.close()


async def test_every_container_verb_acts_on_the_projects_container_and_is_read_back(
        project: tuple[str, Any]) -> None:
    name, _ = project
    control = DockerControl(TiKVSettings(compose_project=name, control="docker"))
    try:
        assert await control.state("tikv1") == "running"
        assert "paused" in await control.pause("tikv1")
        assert await control.state("tikv1") == "paused"
        assert "unpaused" in await control.unpause("tikv1")
        assert "disconnected from network" in await control.disconnect("tikv1")
        assert await control.state("tikv1") == "disconnected"
        assert "reconnected" in await control.reconnect("tikv1")
        assert await control.state("tikv1") == "running"
        assert "killed" in await control.kill("tikv1")

        async def exited() -> bool:
            return await control.state("tikv1") == "exited"

        await wait_until(exited, timeout=10, interval=0.1, what="the killed container exits")
        assert "started" in await control.start("tikv1")
        assert await control.state("tikv1") == "running"
        assert await control.state("pd0") == "missing"
    finally:
        await control.close()


async def test_a_container_of_another_project_is_refused(project: tuple[str, Any]) -> None:
    name, client = project
    control = DockerControl(TiKVSettings(compose_project=name, control="docker"))
    try:
        with pytest.raises(RefusedError, match=f"tikv2 is not a container of compose project '{name}'"):
            await control.kill("tikv2")
    finally:
        await control.close()
    other = client.containers.get(f"{name}-other-tikv1")
    assert other.status == "running"  # the other project's container was never touched


async def test_an_engine_that_does_not_answer_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert docker_answers(1.0) is not None  # nothing listens there
    control = DockerControl(TiKVSettings(control="docker", control_timeout_s=3))
    try:
        # the error names Docker and the address that did not answer; the deadline (well above
        # control_timeout_s) turns a verb that hangs on a silent engine into a failure, not a stuck suite
        async with asyncio.timeout(10):
            with pytest.raises(SubjectError, match=r"Docker.*127\.0\.0\.1") as caught:
                await control.kill("tikv1")
    finally:
        await control.close()
    assert not isinstance(caught.value, RefusedError)  # the engine is away: nothing was refused

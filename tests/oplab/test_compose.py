"""The compose driver's own contract, without a Docker engine: what a run remembers of its project,
and a machine without the `docker` command gets a clear error (the engine-backed path is
tests/e2e/test_tikv_compose.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oplab.compose import Compose, ComposeFailed, ComposeRun
from subjects.contract import ComposeProject

PROJECT = ComposeProject(file=Path("/repo/docker-compose.yml"), profile="tikv", run_variable="OPLAB_TIKV_RUN")


def test_a_run_names_its_profile_run_port_fault_and_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    monkeypatch.delenv("COMPOSE_FILE", raising=False)
    run = ComposeRun.plan(PROJECT, run="r-1", nats_port=14222, fault="store_kill", mode="auto",
                          nats_auth='{"viewer": "pw"}')
    assert run.variables == {"COMPOSE_PROFILES": "tikv", "OPLAB_TIKV_RUN": "r-1", "OPLAB_NATS_PORT": "14222",
                             "OPLAB_FAULT": "store_kill", "OPLAB_DIRECTOR_MODE": "auto",
                             "OPLAB_NATS_AUTH": '{"viewer": "pw"}'}


def test_compose_own_variables_are_remembered_so_down_finds_the_same_project(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "mine")
    monkeypatch.setenv("COMPOSE_FILE", "a.yml:b.yml")
    run = ComposeRun.plan(PROJECT, run="r-1", nats_port=1, fault="f", mode="auto")
    monkeypatch.delenv("COMPOSE_PROJECT_NAME")
    monkeypatch.delenv("COMPOSE_FILE")  # another shell, later
    again = ComposeRun.from_saved(run.saved)
    assert again == run
    assert (again.variables["COMPOSE_PROJECT_NAME"], again.variables["COMPOSE_FILE"]) == ("mine", "a.yml:b.yml")
    assert "a.yml:b.yml" in Compose(again).describe()


def test_without_the_docker_command_every_step_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    compose = Compose(ComposeRun(file=tmp_path / "docker-compose.yml", variables={"COMPOSE_PROFILES": "tikv"}))
    with pytest.raises(ComposeFailed, match=r"Docker Compose v2 .* no `docker` command on PATH"):
        compose.check()
    assert not compose.running()  # a stack whose project cannot be asked is not running

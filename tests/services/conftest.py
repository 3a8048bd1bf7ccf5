"""Fixtures of the services' tests: a director child process, stand-ins for the chaos service it
commands, the run's log as it grows and the run as the director tests drive it. Everything runs on
the session's real nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from events.bus import Bus
from events.subjects import command
from oplab.infra import RunningServer
from oplab.run_log import RunLog, follow_run
from tests.child_processes import Children
from tests.services.director_harness import SCENARIO, ChaosInjectStandIn, DirectedRun, Director, StartDirector

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def director(nats_server: RunningServer, run_id: str, tmp_path: Path) -> AsyncIterator[StartDirector]:
    """``await director(mode, instance, text=SCENARIO)`` starts a director of this test's run on the
    scenario ``text`` (``auto`` or ``interactive``), its output in ``tmp_path``; any still running at the
    end is killed."""
    scenario = tmp_path / "scenario.yaml"
    children = Children()

    async def start(mode: str, instance: str, text: str = SCENARIO) -> Director:
        scenario.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_")}
        env.update(NATS_URL=nats_server.url, OPLAB_RUN=run_id, OPLAB_SCENARIO=str(scenario),
                   OPLAB_DIRECTOR_MODE=mode, OPLAB_FAULT="node_kill", OPLAB_INSTANCE=instance,
                   OPLAB_HOME=str(tmp_path / "oplab"), PYTHONUNBUFFERED="1")
        with (tmp_path / f"director-{instance}.log").open("wb") as out:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.director", cwd=REPO,
                                                        env=env, stdout=out, stderr=out)
        return Director(children.add(proc), instance)

    yield start
    await children.kill_running()


@pytest.fixture
async def chaos_stand_in(bus: Bus) -> AsyncIterator[list[dict[str, Any]]]:
    """Answers ``cmd.chaos.revert`` like the chaos service would; records every request."""
    calls: list[dict[str, Any]] = []

    async def answer(msg) -> None:  # type: ignore[no-untyped-def]
        calls.append(json.loads(msg.data))
        await msg.respond(json.dumps({"reverted": [], "failed": []}).encode())

    sub = await bus.nc.subscribe(command("chaos", "revert"), cb=answer)
    yield calls
    await sub.unsubscribe()


@pytest.fixture
async def chaos_injects(bus: Bus, run_id: str) -> AsyncIterator[ChaosInjectStandIn]:
    """Answers ``cmd.chaos.inject`` for this test's run (see ``ChaosInjectStandIn``); releases a held reply
    at the end."""
    stand_in = ChaosInjectStandIn(bus, run_id)
    sub = await bus.nc.subscribe(command("chaos", "inject"), cb=stand_in.answer)
    yield stand_in
    if stand_in.hold is not None:
        stand_in.hold.set()
    await sub.unsubscribe()


@pytest.fixture
async def run_log(bus: Bus, run_id: str) -> AsyncIterator[RunLog]:
    """This test's run as it is recorded: history, then live."""
    log, replay = await follow_run(bus, run_id)
    yield log
    await replay.stop()  # type: ignore[attr-defined]


@pytest.fixture
def run(bus: Bus, run_id: str, run_log: RunLog) -> DirectedRun:
    """This test's run as a director test drives it (``DirectedRun``)."""
    return DirectedRun(bus, run_id, run_log)

"""The chaos service with the TiKV subject and a Docker engine that does not answer: an injection
fails with a clear error naming Docker, is recorded as failed, and nothing is injected or touched."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from events.bus import Bus
from events.commands import CommandError, request
from oplab.infra import RunningServer
from tests.e2e.conftest import follow_run
from tests.fakes.tikv import TiKVDouble

REPO = Path(__file__).resolve().parents[3]


async def test_with_docker_unreachable_an_injection_fails_clearly_and_nothing_is_injected(
        double: TiKVDouble, nats_server: RunningServer, bus: Bus, run_id: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPLAB_", "DOCKER_"))}
    env.update(double.env(), OPLAB_TIKV_CONTROL="docker", DOCKER_HOST="tcp://127.0.0.1:1",
               OPLAB_TIKV_CONTROL_TIMEOUT_S="2", NATS_URL=nats_server.url, OPLAB_RUN=run_id, OPLAB_SUBJECT="tikv",
               OPLAB_HOME=str(tmp_path / "oplab"), PYTHONUNBUFFERED="1")
    log, replay = await follow_run(bus, run_id)
    with (tmp_path / "chaos.log").open("wb") as out:
        chaos = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.chaos", cwd=REPO, env=env,
                                                     stdout=out, stderr=out)
    try:
        await log.wait_for(lambda e: e.type == "svc.started", 30, "chaos ready")
        with pytest.raises(CommandError) as failed:
            await request(bus.nc, "chaos", "inject", {"kind": "store_kill", "target": "store-1"}, timeout=20)
        assert failed.value.code == "500" and "Docker" in failed.value.description
        recorded = await log.wait_for(lambda e: e.type == "chaos.fault_failed", 10, "chaos.fault_failed")
        assert recorded.data.stage == "inject" and "Docker" in recorded.data.reason
        assert (await request(bus.nc, "chaos", "list"))["faults"] == []
    finally:
        chaos.send_signal(signal.SIGTERM)
        await asyncio.wait_for(chaos.wait(), 20)
        await replay.stop()  # type: ignore[attr-defined]
    assert not log.of_type("chaos.fault_injected")
    assert {p["name"]: p["statename"] for p in double.supervisor.processes()}["store-1"] == "RUNNING"

"""One subject per run: a process started with another subject than the run's refuses to serve it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from events import RunStarted, new_event
from events.bus import Bus
from oplab.infra import RunningServer
from services.runtime import ServiceProcess, ServiceSettings


class Probe(ServiceProcess):
    name = "probe"

    async def main(self) -> None:  # pragma: no cover - only ensure_run_subject is exercised
        await self.stopping.wait()


async def test_a_process_of_another_subject_refuses_the_run(bus: Bus, run_id: str) -> None:
    service = Probe(bus, ServiceSettings(run=run_id, instance="t"))
    await service.ensure_run_subject("ratelimiter")  # no run.started yet: nothing to disagree with
    await bus.publish(new_event(RunStarted(scenario="toy", subject="toy"), run=run_id, source="director/t"))
    await service.ensure_run_subject("toy")
    with pytest.raises(SystemExit, match=rf"run {run_id} is a run of subject 'toy', but this process serves "
                                         r"'ratelimiter' \(OPLAB_SUBJECT\)"):
        await service.ensure_run_subject("ratelimiter")


@pytest.mark.parametrize("service", ["monitor", "agent", "chaos", "loadgen", "director"])
def test_a_service_told_to_serve_an_unknown_subject_exits_saying_so(
        service: str, nats_server: RunningServer, run_id: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_")}
    env.update(NATS_URL=nats_server.url, OPLAB_RUN=run_id, OPLAB_SUBJECT="nosuch")
    result = subprocess.run([sys.executable, "-m", f"services.{service}"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "unknown subject 'nosuch'; known: ratelimiter, tikv" in result.stderr and "(OPLAB_SUBJECT)" in result.stderr
    assert "Traceback" not in result.stderr

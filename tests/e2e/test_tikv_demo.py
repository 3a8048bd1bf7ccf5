"""`oplab demo --headless --subject tikv`, as a user runs it against a cluster at OPLAB_TIKV_PD_URL — here
the PD double and three store doubles (tests/fakes/tikv), with the stores' processes under a supervisord
standing in for Docker. The whole chain runs: monitor, chaos, agent (rules), loadgen (the real KV client),
director, projector. And without a cluster or Docker, the command fails at once, naming Docker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from events.bus import Bus
from oplab.infra import RunningServer
from tests.e2e.conftest import brisk_scenario, run_log
from tests.fakes.tikv import running_double

pytestmark = pytest.mark.e2e

OPLAB = str(Path(sys.executable).parent / "oplab")


async def test_a_killed_store_is_detected_restarted_by_the_agent_and_verified(
        tmp_path: Path, nats_server: RunningServer, bus: Bus) -> None:
    async with running_double(tmp_path / "tikv") as double:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_")}
        env.update(double.env(), NATS_URL=nats_server.url, OPLAB_HOME=str(tmp_path / "oplab"),
                   OPLAB_SCENARIO=str(brisk_scenario("tikv", tmp_path)))
        result = await asyncio.to_thread(
            subprocess.run, [OPLAB, "demo", "--headless", "--subject", "tikv", "--fault", "store_kill"],
            env=env, capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["subject"], summary["fault"], summary["outcome"], summary["resolved_by"]) == (
        "tikv", "store_kill", "resolved", "agent")
    assert 0 < summary["ttd_s"] < 5 and summary["ttm_s"] > 0
    events = await run_log(bus, summary["run"])
    [started] = [e.data for e in events if e.type == "run.started"]
    assert (started.subject, started.scenario) == ("tikv", "tikv")
    [injected] = [e for e in events if e.type == "chaos.fault_injected"]
    store = injected.data.target
    assert injected.data.kind == "store_kill" and store.startswith("store-")
    [opened] = [e for e in events if e.type == "ticket.opened"]
    assert (opened.data.invariant, opened.data.entity, opened.data.subject) == ("store_not_up", store, "tikv")
    [executed] = [e.data for e in events if e.type == "ticket.action_executed"]
    assert (executed.tool, executed.args, executed.ok) == ("start_store", {"store": store}, True)
    cleared = [e for e in events if e.type == "inv.cleared" and e.data.entity == store]
    assert cleared and injected.time < opened.time < cleared[0].time
    stats = [e.data for e in events if e.type == "workload.stats"]
    assert stats and sum(o.ok for s in stats for o in s.operations) > 50  # the prober's real traffic
    assert all(s.details.get("lost_total", 0) == 0 for s in stats)  # and nothing acknowledged was lost
    assert [e.type for e in events if e.type.startswith("run.")] == ["run.started", "run.finished"]


def test_without_a_cluster_or_docker_it_fails_at_once_naming_docker(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPLAB_", "DOCKER_"))}
    home = tmp_path / "oplab"
    env.update(OPLAB_HOME=str(home), DOCKER_HOST="unix:///nonexistent/docker.sock")
    # "at once": refused while planning, before anything starts; the timeout only keeps a command that
    # hangs from stalling the suite
    result = subprocess.run([OPLAB, "demo", "--headless", "--subject", "tikv"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "no Docker engine answers at unix:///nonexistent/docker.sock" in result.stderr
    assert "docker compose --profile tikv up -d" in result.stderr and "Traceback" not in result.stderr
    # nothing was started or written: no stack.json, no NATS users, no supervisord config
    assert [p.relative_to(home) for p in home.rglob("*") if p.is_file()] == []

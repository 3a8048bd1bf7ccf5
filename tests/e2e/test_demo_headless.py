"""The headless demo, as a user runs it, for each fault; the story asserted from the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from events.bus import Bus
from events.subjects import run_events
from oplab.infra import RunningServer

pytestmark = pytest.mark.e2e

OPLAB = str(Path(sys.executable).parent / "oplab")
TICKET_STORY = ["ticket.opened", "ticket.claimed", "ticket.diagnosed", "ticket.action_requested",
                "ticket.action_executed",
                "ticket.verified", "ticket.resolved"]


def run_demo(fault: str, env: dict[str, str]) -> tuple[dict, str]:  # type: ignore[type-arg]
    proc = subprocess.run([OPLAB, "demo", "--headless", "--fault", fault], env=env, capture_output=True,
                          text=True, timeout=240)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1]), proc.stdout


@pytest.mark.parametrize("fault", ["node_kill", "counter_drift"])
async def test_headless_demo_is_resolved_by_the_agent(fault: str, tmp_path: Path, nats_server: RunningServer,
                                                      valkey_server: RunningServer, bus: Bus) -> None:
    env = {**os.environ, "OPLAB_HOME": str(tmp_path / "oplab"), "NATS_URL": nats_server.url,
           "REDIS_URL": valkey_server.url}
    summary, stdout = run_demo(fault, env)
    assert summary["fault"] == fault
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent"
    assert 0 < summary["ttd_s"] < 10 and 0 < summary["ttm_s"] < 20
    for title in ("Welcome", "Breaking it", "Detection", "Remediation", "Verification", "Summary"):
        assert title in stdout

    events = []

    async def collect(d):  # type: ignore[no-untyped-def]
        events.append(d.event)

    await bus.replay(run_events(summary["run"]), collect)
    ticket = [e for e in events if e.type.startswith("ticket.") and e.data.ticket_id == summary["ticket"]]
    assert [e.type for e in ticket] == TICKET_STORY
    injected = [e for e in events if e.type == "chaos.fault_injected"]
    assert len(injected) == 1 and injected[0].data.kind == fault
    reverted = [e for e in events if e.type == "chaos.fault_reverted"]
    assert [e.data.fault_id for e in reverted] == [injected[0].data.fault_id]
    opened = ticket[0].data
    violated = [e for e in events if e.type == "inv.violated" and e.data.invariant == opened.invariant]
    cleared = [e for e in events if e.type == "inv.cleared" and e.data.invariant == opened.invariant
               and e.data.entity == opened.entity]
    assert violated and cleared
    assert injected[0].time < violated[0].time < ticket[0].time < cleared[0].time <= ticket[-1].time
    assert [e.type for e in events if e.type.startswith("run.")] == ["run.started", "run.finished"]


async def test_the_demo_runs_on_embedded_servers_alone(tmp_path: Path) -> None:
    """`make demo`'s path: no NATS_URL, no REDIS_URL — oplab starts its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "REDIS_URL")}
    env["OPLAB_HOME"] = str(tmp_path / "oplab")
    summary, _ = run_demo("node_kill", env)
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent"
    assert (tmp_path / "oplab" / "nats" / "js").is_dir()

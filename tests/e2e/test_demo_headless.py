"""`oplab demo --headless --fault F`, as a user runs it, for every fault in the catalogue.

Each incident fault must fire its invariant, be resolved by the rules agent, clear,
and be reverted — all asserted from the event log. The control fault (a legitimate
burst) must lead to no mutating action and leave nothing open.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from events.bus import Bus
from oplab.infra import RunningServer
from services.director.scenario import load_scenario
from subjects.registry import load_subject
from tests.e2e.conftest import brisk_scenario, run_log
from tests.servers import EmbeddedValkey

pytestmark = pytest.mark.e2e

OPLAB = str(Path(sys.executable).parent / "oplab")
TICKET_STORY = ["ticket.opened", "ticket.claimed", "ticket.diagnosed", "ticket.action_requested",
                "ticket.action_executed", "ticket.verified", "ticket.resolved"]

SUBJECT = load_subject("ratelimiter")
SCENARIO = load_scenario(None, SUBJECT)
# the rules agent's remedy for each incident fault (what this test expects of the operator); the
# invariant each must fire is the subject's own word (Fault.detected_by)
REMEDY = {
    "node_kill": "restart_node",
    "counter_drift": "prune_counter",
    "ghost_allowing": "restart_node",
    "redis_pause": "unpause_redis",
    "redis_oom": "set_memory_limit",
    "limit_misconfig": "set_limit",
}
DETECTED_BY = {f.kind: f.detected_by for f in SUBJECT.catalogue().faults}
INCIDENTS = [f for f, spec in SCENARIO.faults.items() if not spec.control]
CONTROLS = [f for f, spec in SCENARIO.faults.items() if spec.control]


def test_the_scenario_the_subject_and_these_tests_name_the_same_faults() -> None:
    assert sorted(SCENARIO.faults) == sorted(DETECTED_BY)  # the scenario plays every fault the subject has
    assert sorted(REMEDY) == sorted(INCIDENTS)  # and this module tests each incident fault...
    assert CONTROLS == ["hot_key_burst"]  # ...and the control below
    assert all(DETECTED_BY[f] for f in INCIDENTS) and not any(DETECTED_BY[f] for f in CONTROLS)
    invariants = {i.name for i in SUBJECT.catalogue().invariants}
    assert {DETECTED_BY[f] for f in INCIDENTS} <= invariants


def run_demo(fault: str, env: dict[str, str]) -> tuple[dict, str]:  # type: ignore[type-arg]
    proc = subprocess.run([OPLAB, "demo", "--headless", "--fault", fault], env=env, capture_output=True,
                          text=True, timeout=170)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1]), proc.stdout


@pytest.fixture
def demo_env(tmp_path: Path, nats_server: RunningServer, valkey_server: EmbeddedValkey) -> dict[str, str]:
    return {**os.environ, "OPLAB_HOME": str(tmp_path / "oplab"), "NATS_URL": nats_server.url,
            "REDIS_URL": valkey_server.url, "OPLAB_SCENARIO": str(brisk_scenario("ratelimiter", tmp_path))}


@pytest.mark.parametrize("fault", INCIDENTS)
async def test_every_incident_fault_is_detected_and_resolved_by_the_agent(
    fault: str, demo_env: dict[str, str], bus: Bus
) -> None:
    invariant, remedy = DETECTED_BY[fault], REMEDY[fault]
    summary, stdout = run_demo(fault, demo_env)
    assert summary["fault"] == fault
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent"
    assert summary["ttd_s"] > 0 and summary["ttm_s"] > 0  # figures, not targets: bench/ judges those
    for title in ("Welcome", "Breaking it", "Detection", "Remediation", "Verification", "Summary"):
        assert title in stdout

    events = await run_log(bus, summary["run"])
    ticket = [e for e in events if e.type.startswith("ticket.") and e.data.ticket_id == summary["ticket"]
              and e.type != "ticket.recurred"]  # a recurrence is legitimate news, not a step of the story
    assert [e.type for e in ticket] == TICKET_STORY
    opened = ticket[0].data
    assert opened.invariant == invariant
    executed = [e.data for e in ticket if e.type == "ticket.action_executed"]
    assert [a.tool for a in executed] == [remedy] and executed[0].ok
    injected = [e for e in events if e.type == "chaos.fault_injected"]
    assert len(injected) == 1 and injected[0].data.kind == fault
    reverted = [e for e in events if e.type == "chaos.fault_reverted"]
    assert [e.data.fault_id for e in reverted] == [injected[0].data.fault_id]
    violated = [e for e in events if e.type == "inv.violated" and e.data.invariant == invariant]
    cleared = [e for e in events if e.type == "inv.cleared" and e.data.invariant == invariant
               and e.data.entity == opened.entity]
    assert violated and cleared
    assert injected[0].time < violated[0].time < ticket[0].time < cleared[0].time <= ticket[-1].time
    assert [e.type for e in events if e.type.startswith("run.")] == ["run.started", "run.finished"]
    still_open = {e.data.ticket_id for e in events if e.type == "ticket.opened"} - {
        e.data.ticket_id for e in events if e.type in ("ticket.resolved", "ticket.escalated")}
    assert not still_open, f"tickets left open: {still_open}"


async def test_a_legitimate_burst_leads_to_no_action_and_nothing_open(demo_env: dict[str, str], bus: Bus) -> None:
    summary, stdout = run_demo("hot_key_burst", demo_env)
    assert summary["outcome"] == "no_action" and summary["actions"] == 0
    assert "Nothing to fix" in stdout and "Detection" not in stdout
    events = await run_log(bus, summary["run"])
    assert not [e for e in events if e.type in ("ticket.action_requested", "ticket.action_executed")]
    burst = [e for e in events if e.type == "chaos.fault_effective"]
    assert burst, "the burst really happened"
    opened = {e.data.ticket_id for e in events if e.type == "ticket.opened"}
    closed = {e.data.ticket_id for e in events if e.type in ("ticket.resolved", "ticket.escalated")}
    assert opened <= closed


async def test_the_demo_runs_on_embedded_servers_alone(tmp_path: Path) -> None:
    """`make demo`'s path: no NATS_URL, no REDIS_URL — oplab starts its own; the shipped scenario as it is."""
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "REDIS_URL", "OPLAB_SCENARIO")}
    env["OPLAB_HOME"] = str(tmp_path / "oplab")
    summary, _ = run_demo("node_kill", env)
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent"
    assert (tmp_path / "oplab" / "nats" / "js").is_dir()
    # ... its NATS with a user per service (tests/oplab/test_nats_auth.py), the secrets owner-only
    for secret in ("nats-auth.json", "nats.conf", "supervisord.conf"):
        assert (tmp_path / "oplab" / secret).stat().st_mode & 0o777 == 0o600

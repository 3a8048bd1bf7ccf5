"""A real run's events say why they happened: `oplab events show` walks a resolution back to the violation
and the snapshot that showed it, and a revert back to its injection and the chapter that asked for it.

One headless demo (`oplab demo --headless --fault node_kill`, the brisk scenario) on the test servers,
then the real CLI reads its log, as a user would after the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oplab.infra import RunningServer
from tests.e2e.conftest import brisk_scenario
from tests.servers import EmbeddedValkey

pytestmark = pytest.mark.e2e

OPLAB = str(Path(sys.executable).parent / "oplab")


def oplab(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPLAB, *args], env=env, capture_output=True, text=True, timeout=timeout)


def docs(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, nats_server: RunningServer,
         valkey_server: EmbeddedValkey) -> tuple[dict[str, str], dict[str, Any]]:
    """One finished node_kill run resolved by the agent: the CLI's environment and the run's summary."""
    tmp = tmp_path_factory.mktemp("causation")
    env = {**os.environ, "OPLAB_HOME": str(tmp / "oplab"), "NATS_URL": nats_server.url,
           "REDIS_URL": valkey_server.url, "OPLAB_SCENARIO": str(brisk_scenario("ratelimiter", tmp))}
    result = oplab(env, "demo", "--headless", "--fault", "node_kill", timeout=170)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent"
    return env, summary


def one(env: dict[str, str], run: str, type_name: str, correlation: str) -> dict[str, Any]:
    [doc] = docs(oplab(env, "events", run, "--type", type_name, "--correlation", correlation, "--json"))
    return doc


def show(env: dict[str, str], ref: str, *args: str) -> dict[str, Any]:
    [doc] = docs(oplab(env, "events", "show", ref, *args, "--json"))
    return doc


def test_a_resolution_walks_back_through_the_ticket_to_the_violation_and_the_snapshot_that_showed_it(
        demo: tuple[dict[str, str], dict[str, Any]]) -> None:
    env, summary = demo
    resolved = one(env, summary["run"], "ticket.resolved", summary["ticket"])
    doc = show(env, str(resolved["seq"]))
    assert doc["id"] == resolved["id"] and doc["data"]["by"] == "agent"
    chain = doc["causation_chain"]
    types = [c["type"] for c in chain]
    assert "missing" not in chain[-1], chain[-1]
    assert types[-4:] == ["ticket.claimed", "ticket.opened", "inv.violated", "obs.snapshot"], types
    assert {"ticket.verified", "ticket.action_executed", "ticket.action_requested", "ticket.diagnosed"} <= set(types)
    assert all(c["data"]["ticket_id"] == summary["ticket"] for c in chain if c["type"].startswith("ticket."))
    violated, opened = chain[-2], chain[-3]
    assert (violated["data"]["invariant"], violated["data"]["entity"]) == (
        opened["data"]["invariant"], opened["data"]["entity"])
    assert [c["seq"] for c in chain] == sorted((c["seq"] for c in chain), reverse=True)  # causes come first
    correlated = {c["type"] for c in doc["correlated"]}
    assert {"ticket.opened", "agent.session_started", "agent.session_finished"} <= correlated


def test_a_revert_walks_back_to_its_injection_and_the_chapter_that_asked_for_it(
        demo: tuple[dict[str, str], dict[str, Any]]) -> None:
    env, summary = demo
    [injected] = docs(oplab(env, "events", summary["run"], "--type", "chaos.fault_injected", "--json"))
    fault_id = injected["data"]["fault_id"]
    reverted = one(env, summary["run"], "chaos.fault_reverted", fault_id)
    doc = show(env, reverted["id"], "--run", summary["run"])
    assert [c["type"] for c in doc["causation_chain"]] == [
        "chaos.fault_injected", "chaos.fault_requested", "director.chapter_started"]
    assert doc["causation_chain"][0]["id"] == injected["id"]
    assert {c["type"] for c in doc["correlated"]} >= {"chaos.fault_requested", "chaos.fault_injected",
                                                      "chaos.fault_effective"}


def test_an_agents_session_hangs_off_its_claim(demo: tuple[dict[str, str], dict[str, Any]]) -> None:
    env, summary = demo
    started = one(env, summary["run"], "agent.session_started", summary["ticket"])
    assert [c["type"] for c in show(env, str(started["seq"]))["causation_chain"][:3]] == [
        "ticket.claimed", "ticket.opened", "inv.violated"]

"""Manual approval: a mutating call waits for a human; read-only calls never wait.

Approval comes from the real CLI (``oplab approve ID``, a child process on the test's NATS);
rejection from the console's key on the highlighted request (the console app's own wiring to the
ticket store). The model gets the rejection back as a tool error.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

from console.app import ConsoleApp
from console.live import store_decider
from events.bus import Bus
from events.settings import BusSettings
from projections.lab_view import LabView
from tests.fakes.anthropic_server import FakeAnthropic, final, message, tool, tool_results, tool_use
from tests.services.agent.conftest import AgentLab, claude_config

OPLAB = Path(sys.executable).parent / "oplab"


async def oplab(bus_settings: BusSettings, home: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "NATS_URL": bus_settings.nats_url, "OPLAB_HOME": str(home)}
    proc = await asyncio.create_subprocess_exec(str(OPLAB), *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_manual_approval_waits_approve_executes_reject_reaches_the_model(
        lab: AgentLab, api: FakeAnthropic, bus: Bus, bus_settings: BusSettings, tmp_path: Path) -> None:
    api.script([
        message(tool("list_nodes"), tool("restart_node", {"node": "node-3"})),
        tool_use("restart_node", {"node": "node-1"}, say="Now node-1."),
        tool_use("escalate", {"reason": "a human rejected my restart of node-1"}),
    ])
    await lab.start_agent(claude_config(api, approval="manual", session_deadline_s=18.0, lease_s=20.0))
    ticket = await lab.open_ticket("node_down", "node-3")

    requested = await lab.log.wait_for(lambda e: e.type == "ticket.action_requested", 15, "first request")
    assert requested.data.awaiting_approval and requested.data.tool == "restart_node"
    first = requested.data.action_id
    # the read-only call of the same turn ran at once; the mutating one waits
    assert [e.data.tool for e in lab.of("agent.tool_result", ticket)] == ["list_nodes"]
    assert not lab.of("ticket.action_executed", ticket)
    await lab.log.wait_for(lambda e: e.type == "agent.thought" and f"oplab approve {first}" in e.data.text, 10,
                           "the agent saying how to approve")

    code, out, err = await oplab(bus_settings, tmp_path / "home", "approve", first, "--json")
    assert code == 0, err
    doc = json.loads(out.strip().splitlines()[-1])
    assert doc["decision"] == "approved" and doc["ticket"] == ticket and doc["run"] == lab.run
    executed = await lab.log.wait_for(lambda e: e.type == "ticket.action_executed", 15, "approved action runs")
    assert executed.data.action_id == first and executed.data.ok
    approved = lab.of("ticket.action_approved", ticket)[0].data
    assert approved.by == f"cli:{getpass.getuser()}"

    # the second mutating call: rejected from the console, on the highlighted request
    second = await lab.log.wait_for(lambda e: e.type == "ticket.action_requested" and e.data.action_id != first,
                                    15, "second request")
    view = LabView(lab.run)
    for _, event in list(lab.log.events):
        view.apply(event)
    assert [a.action_id for _, a in view.pending_approvals()] == [second.data.action_id]
    app = ConsoleApp(view, on_decide=store_decider(bus, lab.run))
    for key in ["r", *"node-1 serves prod traffic", "enter"]:  # r asks for a reason; enter sends it
        assert app.handle_key(key)
    rejected = await lab.log.wait_for(lambda e: e.type == "ticket.action_rejected", 15, "rejection")
    assert rejected.data.action_id == second.data.action_id
    assert rejected.data.reason == "node-1 serves prod traffic"

    finished = await lab.finished(ticket, 20)
    assert finished.data.outcome == "escalated"
    assert lab.of("ticket.escalated", ticket)[0].data.reason == \
        "the model escalated: a human rejected my restart of node-1"
    assert [e.data.action_id for e in lab.of("ticket.action_executed", ticket)] == [first]  # never the rejected one
    third_turn = next(r["body"] for r in api.requests if len(r["body"]["messages"]) == 5)
    [result] = tool_results(third_turn)
    assert result["is_error"] is True
    assert result["content"] == (f"error: rejected by console:{getpass.getuser()}: node-1 serves prod traffic "
                                 "(the action was not executed)")
    # a decided action cannot be decided again
    code, _, err = await oplab(bus_settings, tmp_path / "home", "reject", first, "--reason", "too late")
    assert code == 1 and "is escalated: cannot reject its actions" in err


async def test_the_rules_policy_honours_manual_approval(lab: AgentLab, bus: Bus) -> None:
    from services.agent.settings import AgentSettings

    await lab.start_agent(AgentSettings(policy="rules", approval="manual", lease_s=20.0, session_deadline_s=15.0))
    ticket = await lab.open_ticket("node_down", "node-3")
    requested = await lab.log.wait_for(lambda e: e.type == "ticket.action_requested", 15, "rules request")
    assert requested.data.awaiting_approval
    await store_decider(bus, lab.run, by="tester")(ticket, requested.data.action_id, False, "not during the demo")
    finished = await lab.finished(ticket, 15)
    assert finished.data.outcome == "escalated"
    reason = lab.of("ticket.escalated", ticket)[0].data.reason
    assert reason == ("remedy failed: restart_node: rejected by tester: not during the demo "
                      "(the action was not executed)")
    assert not lab.of("ticket.action_executed", ticket)


async def test_waiting_for_a_human_pauses_the_deadline_and_keeps_the_lease(lab: AgentLab, api: FakeAnthropic) -> None:
    # the model is slow (most of a lease) before it asks: the lease must not lapse during the wait
    api.script([tool_use("restart_node", {"node": "node-3"}, delay_s=2.5), final("Restarted node-3.")])
    config = claude_config(api, approval="manual", session_deadline_s=3.0, lease_s=3.5)
    await lab.start_agent(config, instance="a1")
    await lab.start_agent(config, instance="a2")  # ready to reclaim a ticket whose lease runs out
    ticket = await lab.open_ticket("node_down", "node-3")
    requested = await lab.log.wait_for(lambda e: e.type == "ticket.action_requested", 15, "the request")
    claimed = lab.of("ticket.claimed", ticket)[0].data
    # the human takes longer than the whole session deadline and the original lease; the
    # claimer keeps the ticket meanwhile
    await lab.log.wait_for(lambda e: len(lab.of("ticket.lease_renewed", ticket)) >= 4, 15, "four lease renewals")
    renewed = lab.of("ticket.lease_renewed", ticket)
    assert {r.data.agent for r in renewed} == {claimed.agent}
    assert renewed[-1].data.lease_until > claimed.lease_until + timedelta(seconds=2)
    assert len(lab.of("ticket.claimed", ticket)) == 1 and not lab.of("ticket.escalated", ticket)
    await lab.store.update(ticket, lambda t: t.approve_action(requested.data.action_id, "test-operator"))
    executed = await lab.log.wait_for(lambda e: e.type == "ticket.action_executed", 15, "the approved restart")
    assert executed.data.ok
    await lab.clear("node_down", "node-3")
    finished = await lab.finished(ticket)
    assert finished.data.outcome == "resolved", finished.data


async def test_a_request_nobody_decides_on_is_rejected_and_the_model_is_told(lab: AgentLab,
                                                                             api: FakeAnthropic) -> None:
    api.script([tool_use("restart_node", {"node": "node-3"}),
                tool_use("escalate", {"reason": "nobody approved the restart"})])
    agent = await lab.start_agent(claude_config(api, approval="manual", approval_timeout_s=1.0))
    ticket = await lab.open_ticket("node_down", "node-3")
    rejected = await lab.log.wait_for(lambda e: e.type == "ticket.action_rejected", 15, "the agent's rejection")
    assert rejected.data.by == agent.agent_id and rejected.data.reason == "no decision within 1s"
    finished = await lab.finished(ticket)
    assert finished.data.outcome == "escalated"
    told = tool_results(api.requests[1]["body"])
    assert len(told) == 1 and told[0].get("is_error") and "no decision within 1s" in str(told[0]["content"])
    assert not lab.of("ticket.action_executed", ticket)

"""A scripted Claude session fixes a real injected fault, and its replay reproduces it offline.

The real monitor watches a real three-node cluster; ``node_kill`` SIGKILLs a node; the monitor
opens the ticket; the agent (Claude policy, fake Messages API) runs the scripted tool calls
against the real subject — they really restart the node — and verifies recovery itself from the
monitor's ``inv.cleared``. Then the fake API is stopped and the replay policy re-runs the recorded
session on a second run with the same fault: same tool calls, same outcome, no network.
"""

from __future__ import annotations

import json
import re
from typing import Any

from events.bus import Bus
from events.settings import BusSettings
from events.subjects import run_events
from subjects.ratelimiter.fault_kit import RateLimiterFaultKit
from subjects.registry import load_subject
from tests.e2e.conftest import RunLog
from tests.fakes.anthropic_server import FakeAnthropic, Reply, final, ticket_of, tool_use
from tests.services.agent.conftest import AgentLab, claude_config
from tests.subjects.ratelimiter.conftest import Cluster

SCRIPT = [
    tool_use("list_nodes", say="A node is reported down; let me look at the nodes first."),
    tool_use("restart_node", {"node": "node-2"}, say="node-2 is down and its process is not running. Restarting it."),
    tool_use("node_status", {"node": "node-2"}, say="Checking that node-2 answers again."),
    final("node-2's process had died, so it was down. I restarted it through the supervisor and checked that "
          "its /health answers and its heartbeat is fresh."),
]


async def kill(cluster: Cluster, node: str) -> None:
    kit = RateLimiterFaultKit(cluster.settings)
    try:
        fault = kit.fault("node_kill")
        assert fault is not None
        await fault.inject(node, fault.params_model())
    finally:
        await kit.close()


async def test_a_scripted_session_fixes_a_real_fault_and_replays_without_the_api(
        lab: AgentLab, api: FakeAnthropic, bus: Bus, bus_settings: BusSettings, agent_cluster: Cluster) -> None:
    api.script(SCRIPT)
    await lab.start_monitor()
    await lab.start_agent(claude_config(api, verify_timeout_s=10.0, prompt="Prefer the least invasive remedy."))
    await kill(agent_cluster, "node-2")

    opened = await lab.log.wait_for(lambda e: e.type == "ticket.opened", 15, "ticket opened")
    ticket = opened.data.ticket_id
    assert (opened.data.invariant, opened.data.entity) == ("node_down", "node-2")
    finished = await lab.finished(ticket, 40)
    assert finished.data.outcome == "resolved", finished.data
    resolved = lab.of("ticket.resolved", ticket)[0].data
    assert resolved.by == "agent" and "restarted it through the supervisor" in resolved.note
    lifecycle = [e.type for e in lab.of("ticket.opened", ticket) + lab.of("ticket.claimed", ticket)
                 + lab.of("ticket.action_requested", ticket) + lab.of("ticket.action_executed", ticket)
                 + lab.of("ticket.verified", ticket) + lab.of("ticket.resolved", ticket)]
    assert lifecycle == ["ticket.opened", "ticket.claimed", "ticket.action_requested", "ticket.action_executed",
                         "ticket.verified", "ticket.resolved"]
    executed = lab.of("ticket.action_executed", ticket)[0].data
    assert (executed.tool, executed.args, executed.ok) == ("restart_node", {"node": "node-2"}, True)
    # the clear the agent relied on came after its remedy
    call_seq = next(seq for seq, e in lab.log.events if e.type == "agent.tool_call" and e.data.tool == "restart_node")
    clear_seq = next(seq for seq, e in lab.log.events if e.type == "inv.cleared" and e.data.entity == "node-2")
    assert clear_seq > call_seq
    # the whole conversation is in the log: requests rebuild the messages the API received
    requests = [e.data for e in lab.of("agent.llm_request", ticket)]
    assert [r.turn for r in requests] == [1, 2, 3, 4]
    assert requests[0].system and "distributed system" in requests[0].system
    assert requests[0].system.endswith("Additional instructions:\nPrefer the least invasive remedy.")  # the variant's
    assert "node_kill" not in requests[0].system and "node_kill" not in str(requests[0].messages)
    assert {t["name"] for t in requests[0].tool_schemas} >= {"list_nodes", "restart_node", "escalate"}
    rebuilt = [m for r in requests for m in r.messages]
    assert rebuilt == api.requests[-1]["body"]["messages"]
    responses = [e.data for e in lab.of("agent.llm_response", ticket)]
    assert [r.stop_reason for r in responses] == ["tool_use", "tool_use", "tool_use", "end_turn"]
    assert all(r.usage["input_tokens"] > 0 and r.latency_ms > 0 for r in responses)
    recorded_calls = [(e.data.tool, e.data.args) for e in lab.of("agent.tool_call", ticket)]
    assert finished.data.turns == 4 and finished.data.tokens == sum(sum(r.usage.values()) for r in responses)

    # -- replay on a fresh run, with the fake API gone ---------------------------------------------------
    await lab.close()
    await api.stop()
    api.requests.clear()
    replay_run = f"{lab.run}-rp"
    log = RunLog()
    feed = await bus.replay(run_events(replay_run), log.handle, follow=True)
    replay_lab = AgentLab(bus, bus_settings, replay_run, agent_cluster, log)
    try:
        await replay_lab.start_monitor()
        config = claude_config(api, policy="replay", replay_run=lab.run, verify_timeout_s=10.0)
        await replay_lab.start_agent(config, instance="replayer")
        await kill(agent_cluster, "node-2")
        opened2 = await log.wait_for(lambda e: e.type == "ticket.opened", 15, "replay ticket opened")
        ticket2 = opened2.data.ticket_id
        finished2 = await replay_lab.finished(ticket2, 40)
        assert finished2.data.outcome == "resolved", finished2.data
        # a live subject may word a result differently (a process state read a tick later); the
        # replay must not diverge in anything that matters: ok flags, tool calls, the outcome
        hard = [e.data for e in replay_lab.of("agent.replay_diverged") if "a different result" not in e.data.what]
        assert hard == [], hard
        assert [(e.data.tool, e.data.args) for e in replay_lab.of("agent.tool_call", ticket2)] == recorded_calls
        started = replay_lab.of("agent.session_started", ticket2)[0].data
        assert started.policy == "replay" and started.replay_of == {"run": lab.run, "ticket": None}
        assert replay_lab.of("ticket.resolved", ticket2)[0].data.by == "agent"
        assert not api.requests  # nothing was asked of any API (and the fake one is not even listening)
    finally:
        await replay_lab.close()
        await feed.stop()


async def test_replaying_a_session_that_failed_verification_fails_it_the_same_way(
        lab: AgentLab, api: FakeAnthropic, bus: Bus, bus_settings: BusSettings, agent_cluster: Cluster) -> None:
    api.script([tool_use("list_nodes"), final("All good now.")])
    # recorded without a second attempt: the recording ends at the model's (wrong) final answer
    await lab.start_agent(claude_config(api, verify_timeout_s=1.0, verify_retries=0))
    ticket = await lab.open_ticket("node_down", "node-2")
    finished = await lab.finished(ticket)
    assert finished.data.outcome == "escalated"
    reason = lab.of("ticket.escalated", ticket)[0].data.reason
    assert reason.startswith("verification failed")
    await lab.close()

    replay_run = f"{lab.run}-rp"
    log = RunLog()
    feed = await bus.replay(run_events(replay_run), log.handle, follow=True)
    replay_lab = AgentLab(bus, bus_settings, replay_run, agent_cluster, log)
    try:
        # replayed with the default verify_retries=1: the recording has no further turn, so no retry
        config = claude_config(api, policy="replay", replay_run=lab.run, verify_timeout_s=1.0)
        await replay_lab.start_agent(config, instance="replayer")
        ticket2 = await replay_lab.open_ticket("node_down", "node-2")
        finished2 = await replay_lab.finished(ticket2)
        assert finished2.data.outcome == "escalated" and finished2.data.divergences == 0, finished2.data
        assert replay_lab.of("ticket.escalated", ticket2)[0].data.reason == reason
        assert not replay_lab.of("agent.replay_diverged")
    finally:
        await replay_lab.close()
        await feed.stop()


_ENTITY = re.compile(r"violated on `([^`]+)`")


def prune_the_ticket_key(body: dict[str, Any]) -> Reply:
    found = _ENTITY.search(body["messages"][0]["content"])
    assert found is not None, body["messages"][0]
    return tool_use("prune_counter", {"key": found.group(1)}, say="Its window holds future-dated entries: pruning.")


async def test_no_fault_name_reaches_the_model(
        lab: AgentLab, api: FakeAnthropic, agent_cluster: Cluster) -> None:
    """A fault whose kind once named the invariant it breaks (counter_drift): the model hears of the
    symptom (future-dated entries), and no request of the session carries any fault kind."""
    api.script([tool_use("read_counters", say="A key holds entries dated in the future; reading the windows."),
                prune_the_ticket_key, final("The window held bogus future-dated entries; I pruned them.")])
    await lab.start_monitor()
    await lab.start_agent(claude_config(api, verify_timeout_s=10.0))
    kit = RateLimiterFaultKit(agent_cluster.settings)
    fault = kit.fault("counter_drift")
    assert fault is not None
    injection = await fault.inject("user:bob", fault.params_model())
    try:
        opened = await lab.log.wait_for(lambda e: e.type == "ticket.opened", 15, "ticket opened")
        ticket = opened.data.ticket_id
        assert (opened.data.invariant, opened.data.entity) == ("future_dated_entries", "user:bob")
        finished = await lab.finished(ticket, 40)
        assert finished.data.outcome == "resolved", finished.data
    finally:
        await fault.revert(injection.undo)
        await kit.close()
    requests = [e.data for e in lab.of("agent.llm_request", ticket)]
    assert len(requests) == 3
    sent = json.dumps([r.model_dump(mode="json") for r in requests])
    assert "future_dated_entries" in sent  # the symptom is what the model is told about
    kinds = load_subject("ratelimiter").catalogue().fault_kinds()
    assert len(kinds) == 7
    assert [k for k in kinds if k in sent] == []
    on_the_wire = json.dumps([r["body"] for r in api.requests if ticket_of(r["body"]) == ticket])
    assert [k for k in kinds if k in on_the_wire] == []

"""Three agent processes, five tickets: each ticket is handled exactly once, and the ticket of an
agent killed mid-session (SIGKILL: it cannot escalate) is reclaimed by another once the lease runs out.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

from events.envelope import utcnow
from tests.fakes.anthropic_server import FakeAnthropic, Reply, message, text, ticket_of, tool_use
from tests.services.agent.conftest import AgentLab, claude_config

LEASE_S = 5.0


async def test_replicas_share_tickets_and_a_dead_agents_ticket_is_reclaimed_after_its_lease(
        lab: AgentLab, api: FakeAnthropic, tmp_path: Path) -> None:
    stall = asyncio.Event()  # the first session to reach turn 2 hangs there until its agent is dead
    stalled: list[str] = []

    def second_turn(body: dict[str, Any]) -> Reply:
        ticket = ticket_of(body) or "?"
        reply = tool_use("escalate", {"reason": f"handled {ticket}"})
        if not stalled:
            stalled.append(ticket)
            reply.hang = stall
        return reply

    api.script([tool_use("list_nodes", say="Looking."), second_turn])
    env = {"OPLAB_AGENT_POLICY": "claude", "ANTHROPIC_API_KEY": api.api_key, "ANTHROPIC_BASE_URL": api.url,
           "OPLAB_AGENT_LEASE_S": str(LEASE_S), "OPLAB_AGENT_SESSION_DEADLINE_S": str(LEASE_S - 0.5),
           "OPLAB_AGENT_MAX_RETRIES": "0"}
    logs = {}
    procs = {}
    for i in (1, 2, 3):
        instance = f"rep{i}"
        logs[instance] = tmp_path / f"{instance}.log"
        procs[instance] = await lab.spawn_agent(env, instance, log=logs[instance])
    for instance in procs:
        await lab.log.wait_for(lambda e, i=instance: e.type == "svc.started" and e.source == f"agent/{i}", 30,
                               f"agent {instance} ready")

    tickets = [await lab.open_ticket("node_down", f"node-{n}") for n in (1, 2, 3, 1, 2)]
    await api.wait_requests(lambda _: bool(stalled), 20)
    victim_ticket = stalled[0]
    claim = await lab.log.wait_for(lambda e: e.type == "ticket.claimed" and e.data.ticket_id == victim_ticket, 5,
                                   "the stalled ticket's claim")
    victim = claim.data.agent.removeprefix("agent/")
    procs[victim].send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(procs[victim].wait(), 10) == -signal.SIGKILL
    stall.set()  # let the fake server finish the dead agent's request (its answer goes nowhere)

    for ticket in tickets:
        await lab.finished(ticket, 30)

    for ticket in tickets:
        finished = lab.of("agent.session_finished", ticket)
        assert len(finished) == 1, (ticket, [(e.source, e.data.reason) for e in finished])  # handled exactly once
        assert finished[0].data.outcome == "escalated"
        assert [e.data.reason for e in lab.of("ticket.escalated", ticket)] == [f"the model escalated: handled {ticket}"]
        claims = lab.of("ticket.claimed", ticket)
        if ticket != victim_ticket:
            assert len(claims) == 1
    first, second = lab.of("ticket.claimed", victim_ticket)
    assert first.data.agent == f"agent/{victim}" and second.data.agent != first.data.agent
    assert second.time >= first.data.lease_until  # reclaimed only once the dead agent's lease ran out
    survivors = {e.data.agent for e in lab.of("ticket.claimed")} - {f"agent/{victim}"}
    assert len(survivors) >= 1
    # the stalled request was from the victim; the reclaiming agent asked again from turn 1
    assert len([r for r in api.requests if ticket_of(r["body"]) == victim_ticket]) == 4
    for instance, path in logs.items():  # the processes' own log lines carry no key either
        text = path.read_text()
        assert "claimed ticket=" in text or instance == victim, text[-2000:]
        assert api.api_key not in text, instance


async def test_an_agent_that_finds_its_claim_taken_over_stops_its_session(lab: AgentLab, api: FakeAnthropic) -> None:
    stall = asyncio.Event()  # the model "takes forever": the session is mid-turn when the claim is lost
    api.script([message(text("Thinking..."), hang=stall)])
    agent = await lab.start_agent(claude_config(api, lease_s=3.0, session_deadline_s=2.5))
    try:
        ticket = await lab.open_ticket("node_down", "node-2")
        await lab.log.wait_for(lambda e: e.type == "agent.llm_request", 10, "the session's first request")
        # what another agent does once this one's lease has run out (as if this process had stalled)
        claimed = lab.of("ticket.claimed", ticket)[0].data
        await lab.store.update(ticket, lambda t: t.claim("agent/other", "rules", utcnow() + timedelta(minutes=5),
                                                         now=claimed.lease_until + timedelta(seconds=1)))
        finished = await lab.finished(ticket, 10)
        assert finished.data.outcome == "abandoned", finished.data
        assert finished.data.reason.startswith("lost the claim to agent/other")
        assert not lab.of("ticket.escalated", ticket)  # the ticket is the other agent's to close
        state = (await lab.store.load(ticket)).state
        assert state.claimed_by == "agent/other" and state.status == "claimed"
        assert agent.service.sessions == 1
    finally:
        stall.set()

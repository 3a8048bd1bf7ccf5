"""An agent stopped mid-session leaves its ticket escalated, and nothing overwrites that.

To stop the agent at a known point, the monitor is paused as soon as the ticket
opens: the agent's remedy then runs, but verification (which needs the
monitor's ``inv.cleared``) cannot finish, so the session is certainly in flight
when SIGTERM arrives.
"""

from __future__ import annotations

import asyncio

import pytest

from events.bus import Bus
from events.subjects import ticket_subject
from oplab.stack import Stack
from oplab.supervisor import Supervisor
from tests.e2e.conftest import follow_run

pytestmark = pytest.mark.e2e


async def test_sigterm_during_a_session_escalates_the_ticket_for_good(stack: Stack, bus: Bus) -> None:
    info = await asyncio.to_thread(stack.up, fault="node_kill", mode="auto")
    sup = Supervisor(info.supervisor_url)
    log, replay = await follow_run(bus, info.run)
    try:
        opened = await log.wait_for(lambda e: e.type == "ticket.opened", 60, "ticket opened")
        ticket_id = opened.data.ticket_id
        await asyncio.to_thread(sup.stop, "monitor")
        await log.wait_for(lambda e: e.type == "agent.thought" and e.data.ticket_id == ticket_id
                           and "waiting" in e.data.text, 30, "agent verifying")
        first_agent = next(e for _, e in log.events if e.type == "svc.started" and e.data.service == "agent")

        await asyncio.to_thread(stack.restart, "agent")  # SIGTERM mid-session, then a new agent
        escalated = await log.wait_for(lambda e: e.type == "ticket.escalated", 20, "escalation")
        assert escalated.data.ticket_id == ticket_id
        assert "stopped mid-session" in escalated.data.reason
        stopping = await log.wait_for(lambda e: e.type == "svc.stopping" and e.data.service == "agent", 20,
                                      "agent svc.stopping")
        assert stopping.data.reason == "signal"
        assert not [e for _, e in log.events if e.type == "inv.cleared"], "the monitor was paused"

        # the monitor comes back and sees the violation clear; the new agent reads the log;
        # neither may touch the escalated ticket
        await asyncio.to_thread(sup.start, "monitor")
        await log.wait_for(lambda e: e.type == "inv.cleared" and e.data.invariant == opened.data.invariant, 20,
                           "violation cleared")
        await log.wait_for(lambda e: e.type == "svc.started" and e.data.service == "agent"
                           and e.data.pid != first_agent.data.pid, 30, "restarted agent")
        await log.wait_for(lambda e: e.type == "director.chapter_started" and e.data.chapter == "summary", 90,
                           "summary chapter")
    finally:
        await replay.stop()  # type: ignore[attr-defined]
    history = await bus.read_subject(ticket_subject(info.run, ticket_id))
    assert history[-1].event.type == "ticket.escalated"
    assert not [d for d in history if d.event.type == "ticket.resolved"]

"""An agent stopped mid-session leaves its ticket escalated, and nothing overwrites that."""

from __future__ import annotations

import asyncio

import pytest

from events.bus import Bus
from events.subjects import ticket_subject
from oplab.stack import Stack
from tests.e2e.conftest import follow_run

pytestmark = pytest.mark.e2e


async def test_sigterm_during_a_session_escalates_the_ticket_for_good(stack: Stack, bus: Bus) -> None:
    info = await asyncio.to_thread(stack.up, fault="node_kill", mode="auto")
    log, replay = await follow_run(bus, info.run)
    try:
        started = await log.wait_for(lambda e: e.type == "agent.session_started", 60, "agent session")
        ticket_id = started.data.ticket_id
        await asyncio.to_thread(stack.restart, "agent")  # SIGTERM now, mid-session, then a new agent
        escalated = await log.wait_for(lambda e: e.type == "ticket.escalated", 20, "escalation")
        assert escalated.data.ticket_id == ticket_id
        assert "stopped mid-session" in escalated.data.reason
        stopping = await log.wait_for(lambda e: e.type == "svc.stopping" and e.data.service == "agent", 20,
                                      "agent svc.stopping")
        assert stopping.data.reason == "signal"
        # the new agent starts, reads the log, and must leave the escalated ticket alone
        await log.wait_for(lambda e: e.type == "svc.started" and e.data.service == "agent"
                           and e.data.pid != started_pid(log), 30, "restarted agent")
        await log.wait_for(lambda e: e.type == "director.chapter_started" and e.data.chapter == "summary", 90,
                           "summary chapter")
    finally:
        await replay.stop()  # type: ignore[attr-defined]
    history = await bus.read_subject(ticket_subject(info.run, ticket_id))
    assert history[-1].event.type == "ticket.escalated"
    assert not [d for d in history if d.event.type == "ticket.resolved"]


def started_pid(log) -> int:  # type: ignore[no-untyped-def]
    first = next(e for _, e in log.events if e.type == "svc.started" and e.data.service == "agent")
    return int(first.data.pid)

"""How the real director (``python -m services.director``, a child process on the real bus) tells a story.

A chapter ends when its condition is met (also if met before the chapter began), on its timeout,
or - in interactive mode - on the presenter's key (``test_director_recovery.py``); an agent holding a
lease on a ticket holds the story; a chapter on the run's ticket ignores other tickets of the same
fault; a fault lost before detection ends the story at once; the story waits until the monitor has
begun judging. Each test writes a small scenario and asserts from the run's log; chaos is a stand-in
that answers the director's commands (``tests/services/conftest.py``).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from events import (
    BaselineEstablished,
    FaultFailed,
    FaultInjected,
    FaultRequested,
    FaultReverted,
    ServiceStarted,
    TicketClaimed,
    TicketEscalated,
    TicketLeaseRenewed,
    TicketResolved,
    new_fault_id,
)
from events.bus import Bus
from events.envelope import utcnow
from events.subjects import command
from oplab.run_log import RunLog
from tests.services.director_harness import (
    INJECTING,
    StartDirector,
    chapter,
    fault_injected,
    poll_status,
    publish,
    scenario,
    ticket_opened,
)


async def test_auto_mode_advances_on_conditions_met_early_and_on_timeouts(
        director: StartDirector, chaos_stand_in: list[dict[str, object]], run_log: RunLog, bus: Bus,
        run_id: str) -> None:
    d = await director("auto", "auto-1")
    first = await run_log.wait_for(chapter("started", 0), 20, "chapter 1")
    assert first.data.timeout_s == 30 and "waits for ticket.opened" in first.data.advance
    # chapter 2's condition is met while chapter 1 is still showing: it must not be missed
    await publish(bus, run_id, fault_injected())
    await publish(bus, run_id, TicketResolved(ticket_id="tk-x", by="self-healed"))
    await publish(bus, run_id, TicketResolved(ticket_id="tk-x", by="agent"))
    await publish(bus, run_id, ticket_opened())

    await run_log.wait_for(chapter("finished", 3), 20, "last chapter finished")
    finished = [(e.data.chapter, e.data.reason) for e in run_log.of_type("director.chapter_finished")]
    assert finished == [("opening", "condition"), ("fixed", "condition"), ("pause", "timeout"),
                        ("end", "timeout")]
    assert len(run_log.of_type("run.finished")) == 1
    assert len(run_log.of_type("run.started")) == 1
    assert chaos_stand_in == [{"all": True}]

    assert await d.terminate() == 0
    stopping = await run_log.wait_for(lambda e: e.type == "svc.stopping" and d.owns(e), 10, "svc.stopping")
    assert stopping.data.reason == "signal"


AGENT_AT_WORK = scenario("director-agent-test", """\
  - id: remediation
    title: Remediation
    narration: Waiting for the agent.
    advance: {when: {type: ticket.resolved}, timeout_s: 0.5}
  - id: verification
    title: Verification
    narration: Waiting again.
    advance: {when: {type: ticket.verified}, timeout_s: 0.5}
  - id: another
    title: Another ticket
    narration: An agent gives up early.
    advance: {when: {type: ticket.verified}, timeout_s: 0.5}
""")


async def test_an_agent_holding_a_lease_holds_the_story_past_the_chapter_timeout(
        director: StartDirector, run_log: RunLog, bus: Bus, run_id: str) -> None:
    ticket = ticket_opened()
    await publish(bus, run_id, ticket)
    await publish(bus, run_id, TicketClaimed(ticket_id=ticket.ticket_id, agent="agent/a1", policy="claude",
                                             lease_until=utcnow() + timedelta(seconds=1)))
    await director("auto", "agent-test", AGENT_AT_WORK)
    await run_log.wait_for(chapter("started", 0), 20, "chapter 1")
    # the agent renews its lease (say, a human is deciding on an action) and then goes quiet
    renewed = TicketLeaseRenewed(ticket_id=ticket.ticket_id, agent="agent/a1",
                                 lease_until=utcnow() + timedelta(seconds=2))
    await publish(bus, run_id, renewed)
    first = await run_log.wait_for(chapter("finished", 0), 20, "chapter 1 finished")
    assert first.data.reason == "timeout" and first.time >= renewed.lease_until  # not after 0.5s
    # the lease has run out: the next chapter ends on its own timeout
    second = await run_log.wait_for(chapter("finished", 1), 20, "chapter 2 finished")
    assert second.data.reason == "timeout"
    # a long lease that ends early (the agent escalates): the story moves on then, not at the lease's end
    await run_log.wait_for(chapter("started", 2), 20, "chapter 3")
    other = ticket_opened()
    await publish(bus, run_id, other)
    long_lease = TicketClaimed(ticket_id=other.ticket_id, agent="agent/a1", policy="claude",
                               lease_until=utcnow() + timedelta(seconds=60))
    claimed = await publish(bus, run_id, long_lease)
    await poll_status(bus, lambda st: st["seen_seq"] >= claimed and st["held_by_agent"])  # past its 0.5s
    await publish(bus, run_id, TicketEscalated(ticket_id=other.ticket_id, reason="gave up"))
    third = await run_log.wait_for(chapter("finished", 2), 20, "chapter 3 finished")
    assert third.data.reason == "timeout" and third.time < long_lease.lease_until


RUN_TICKET = scenario("director-run-ticket-test", """\
  - id: verification
    title: Verification
    narration: Waiting for the run's ticket.
    advance: {when: {type: ticket.resolved, run_ticket: true}, timeout_s: 30}
""")


async def test_a_chapter_on_the_runs_ticket_ignores_a_second_ticket_of_the_same_fault(
        director: StartDirector, run_log: RunLog, bus: Bus, run_id: str) -> None:
    await director("auto", "run-ticket", RUN_TICKET)
    await run_log.wait_for(chapter("started", 0), 20, "chapter 1")
    await publish(bus, run_id, fault_injected())
    scored, symptom = ticket_opened(), ticket_opened()
    await publish(bus, run_id, scored)
    await publish(bus, run_id, symptom)
    healed = await publish(bus, run_id, TicketResolved(ticket_id=symptom.ticket_id, by="self-healed"))
    status = await poll_status(bus, lambda st: st["seen_seq"] >= healed)
    assert not status["condition_met"]  # the symptom's ticket healed; the run's is still open
    await publish(bus, run_id, TicketResolved(ticket_id=scored.ticket_id, by="agent"))
    finished = await run_log.wait_for(chapter("finished", 0), 20, "chapter 1 finished")
    assert finished.data.reason == "condition"


@pytest.mark.parametrize("lost", ["inject_failed", "reverted", "refused"])
async def test_a_fault_lost_before_detection_ends_the_story_at_once(
        lost: str, director: StartDirector, bus: Bus, run_id: str, run_log: RunLog) -> None:
    async def chaos_loses_it(msg) -> None:  # type: ignore[no-untyped-def]
        if lost == "refused":  # chaos says no (as a nats.micro error reply): nothing was ever asked of the subject
            await bus.nc.publish(msg.reply, b"", headers={"Nats-Service-Error": "no running, healthy node to target",
                                                         "Nats-Service-Error-Code": "400"})
            return
        fault_id = new_fault_id()
        await publish(bus, run_id, FaultRequested(fault_id=fault_id, kind="node_kill", ttl_s=60))
        if lost == "inject_failed":
            await publish(bus, run_id, FaultFailed(fault_id=fault_id, stage="inject", reason="node-1 vanished"))
        else:
            await publish(bus, run_id, FaultInjected(fault_id=fault_id, kind="node_kill", target="node-1",
                                                     expires_at=utcnow() + timedelta(minutes=1)))
            await publish(bus, run_id, FaultReverted(fault_id=fault_id, reason="explicit", changed=True))
        await msg.respond(json.dumps({"fault": {"fault_id": fault_id}}).encode())

    sub = await bus.nc.subscribe(command("chaos", "inject"), cb=chaos_loses_it)
    try:
        d = await director("auto", "lost", INJECTING)
        await run_log.wait_for(chapter("finished", 2), 20, "the story's end")
    finally:
        await sub.unsubscribe()
    chapters = [(e.data.chapter, e.data.reason) for e in run_log.of_type("director.chapter_finished")]
    assert chapters == [("inject", "fault_lost"), ("end", "timeout")]  # detection never waited out
    why = {"inject_failed": "could not be injected (node-1 vanished)", "reverted": "reverted (explicit) before",
           "refused": "refused the injection (no running, healthy node to target)"}[lost]
    assert why in run_log.of_type("run.finished")[0].data.summary["ended"]
    if lost == "inject_failed":  # asked for and never in: a failure, never read as "no fault"
        assert run_log.of_type("run.finished")[0].data.outcome == "not_injected"
    summary_chapter = run_log.of_type("director.chapter_started")[-1]
    assert summary_chapter.data.chapter == "end" and why in summary_chapter.data.narration
    assert await d.terminate() == 0


WITH_MONITOR = scenario("director-baseline-test", """\
  - id: opening
    title: Opening
    narration: The story starts once the monitor judges.
    advance: {timeout_s: 0.1}
""", requires_services="[monitor]")


async def test_the_story_waits_until_the_monitor_has_begun_judging(
        director: StartDirector, bus: Bus, run_id: str, run_log: RunLog) -> None:
    await director("auto", "baseline", WITH_MONITOR)
    up = await publish(bus, run_id, ServiceStarted(service="monitor", instance="m", version="t", pid=1))
    status = await poll_status(bus, lambda st: st["seen_seq"] >= up)
    assert status["chapter"] is None  # the monitor is up but has not seen the subject whole yet
    await publish(bus, run_id, BaselineEstablished(healthy=True, waited_s=0.1))
    started = await run_log.wait_for(chapter("started", 0), 20, "the first chapter")
    assert started.data.chapter == "opening"

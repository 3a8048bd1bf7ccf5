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
import re
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
from events.envelope import utcnow
from events.subjects import command
from tests.services.director_harness import (
    INJECTING,
    DirectedRun,
    StartDirector,
    fault_injected,
    scenario,
    ticket_opened,
)


async def test_auto_mode_advances_on_conditions_met_early_and_on_timeouts(
        director: StartDirector, run: DirectedRun, chaos_stand_in: list[dict[str, object]]) -> None:
    d = await director("auto", "auto-1")
    first = await run.chapter_started(0)
    assert first.data.timeout_s == 30 and "waits for ticket.opened" in first.data.advance
    # chapter 2's condition is met while chapter 1 is still showing: it must not be missed
    await run.publish(fault_injected())
    await run.publish(TicketResolved(ticket_id="tk-x", by="self-healed"))
    await run.publish(TicketResolved(ticket_id="tk-x", by="agent"))
    await run.publish(ticket_opened())

    await run.chapter_finished(3)  # the last chapter
    finished = [(e.data.chapter, e.data.reason) for e in run.log.of_type("director.chapter_finished")]
    assert finished == [("opening", "condition"), ("fixed", "condition"), ("pause", "timeout"),
                        ("end", "timeout")]
    assert len(run.log.of_type("run.finished")) == 1
    assert len(run.log.of_type("run.started")) == 1
    assert chaos_stand_in == [{"all": True}]
    # the summary's figures are spelled as the report and the console spell seconds (projections.text.secs)
    end = [e.data.narration for e in run.log.of_type("director.chapter_started") if e.data.chapter == "end"]
    assert len(end) == 1 and re.search(r"time to detect \d+\.\d\d s, time to mitigate n/a\.$", end[0]), end

    assert await d.terminate() == 0
    assert (await run.recorded_by(d, "svc.stopping")).data.reason == "signal"


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
        director: StartDirector, run: DirectedRun) -> None:
    ticket = ticket_opened()
    await run.publish(ticket)
    await run.publish(TicketClaimed(ticket_id=ticket.ticket_id, agent="agent/a1", policy="claude",
                                    lease_until=utcnow() + timedelta(seconds=1)))
    await director("auto", "agent-test", AGENT_AT_WORK)
    await run.chapter_started(0)
    # the agent renews its lease (say, a human is deciding on an action) and then goes quiet
    renewed = TicketLeaseRenewed(ticket_id=ticket.ticket_id, agent="agent/a1",
                                 lease_until=utcnow() + timedelta(seconds=2))
    await run.publish(renewed)
    first = await run.chapter_finished(0)
    assert first.data.reason == "timeout" and first.time >= renewed.lease_until  # not after 0.5s
    # the lease has run out: the next chapter ends on its own timeout
    second = await run.chapter_finished(1)
    assert second.data.reason == "timeout"
    # a long lease that ends early (the agent escalates): the story moves on then, not at the lease's end
    await run.chapter_started(2)
    other = ticket_opened()
    await run.publish(other)
    long_lease = TicketClaimed(ticket_id=other.ticket_id, agent="agent/a1", policy="claude",
                               lease_until=utcnow() + timedelta(seconds=60))
    claimed = await run.publish(long_lease)
    await run.status(lambda st: st["seen_seq"] >= claimed and st["held_by_agent"])  # past its 0.5s
    await run.publish(TicketEscalated(ticket_id=other.ticket_id, reason="gave up"))
    third = await run.chapter_finished(2)
    assert third.data.reason == "timeout" and third.time < long_lease.lease_until


RUN_TICKET = scenario("director-run-ticket-test", """\
  - id: verification
    title: Verification
    narration: Waiting for the run's ticket.
    advance: {when: {type: ticket.resolved, run_ticket: true}, timeout_s: 30}
""")


async def test_a_chapter_on_the_runs_ticket_ignores_a_second_ticket_of_the_same_fault(
        director: StartDirector, run: DirectedRun) -> None:
    await director("auto", "run-ticket", RUN_TICKET)
    await run.chapter_started(0)
    await run.publish(fault_injected())
    scored, symptom = ticket_opened(), ticket_opened()
    await run.publish(scored)
    await run.publish(symptom)
    healed = await run.publish(TicketResolved(ticket_id=symptom.ticket_id, by="self-healed"))
    status = await run.status(lambda st: st["seen_seq"] >= healed)
    assert not status["condition_met"]  # the symptom's ticket healed; the run's is still open
    await run.publish(TicketResolved(ticket_id=scored.ticket_id, by="agent"))
    finished = await run.chapter_finished(0)
    assert finished.data.reason == "condition"


@pytest.mark.parametrize("lost", ["inject_failed", "reverted", "refused"])
async def test_a_fault_lost_before_detection_ends_the_story_at_once(
        lost: str, director: StartDirector, run: DirectedRun) -> None:
    async def chaos_loses_it(msg) -> None:  # type: ignore[no-untyped-def]
        if lost == "refused":  # chaos says no (as a nats.micro error reply): nothing was ever asked of the subject
            refusal = {"Nats-Service-Error": "no running, healthy node to target", "Nats-Service-Error-Code": "400"}
            await run.bus.nc.publish(msg.reply, b"", headers=refusal)
            return
        fault_id = new_fault_id()
        await run.publish(FaultRequested(fault_id=fault_id, kind="node_kill", ttl_s=60))
        if lost == "inject_failed":
            await run.publish(FaultFailed(fault_id=fault_id, stage="inject", reason="node-1 vanished"))
        else:
            await run.publish(FaultInjected(fault_id=fault_id, kind="node_kill", target="node-1",
                                            expires_at=utcnow() + timedelta(minutes=1)))
            await run.publish(FaultReverted(fault_id=fault_id, reason="explicit", changed=True))
        await msg.respond(json.dumps({"fault": {"fault_id": fault_id}}).encode())

    sub = await run.bus.nc.subscribe(command("chaos", "inject"), cb=chaos_loses_it)
    try:
        d = await director("auto", "lost", INJECTING)
        await run.chapter_finished(2)  # the story's end
    finally:
        await sub.unsubscribe()
    chapters = [(e.data.chapter, e.data.reason) for e in run.log.of_type("director.chapter_finished")]
    assert chapters == [("inject", "fault_lost"), ("end", "timeout")]  # detection never waited out
    why = {"inject_failed": "could not be injected (node-1 vanished)", "reverted": "reverted (explicit) before",
           "refused": "refused the injection (no running, healthy node to target)"}[lost]
    assert why in run.log.of_type("run.finished")[0].data.summary["ended"]
    if lost == "inject_failed":  # asked for and never in: a failure, never read as "no fault"
        assert run.log.of_type("run.finished")[0].data.outcome == "not_injected"
    summary_chapter = run.log.of_type("director.chapter_started")[-1]
    assert summary_chapter.data.chapter == "end" and why in summary_chapter.data.narration
    assert await d.terminate() == 0


WITH_MONITOR = scenario("director-baseline-test", """\
  - id: opening
    title: Opening
    narration: The story starts once the monitor judges.
    advance: {timeout_s: 0.1}
""", requires_services="[monitor]")


async def test_the_story_waits_until_the_monitor_has_begun_judging(
        director: StartDirector, run: DirectedRun) -> None:
    await director("auto", "baseline", WITH_MONITOR)
    up = await run.publish(ServiceStarted(service="monitor", instance="m", version="t", pid=1))
    status = await run.status(lambda st: st["seen_seq"] >= up)
    assert status["chapter"] is None  # the monitor is up but has not seen the subject whole yet
    await run.publish(BaselineEstablished(healthy=True, waited_s=0.1))
    started = await run.chapter_started(0)
    assert started.data.chapter == "opening"

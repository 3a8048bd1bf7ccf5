"""The real director process (``python -m services.director``) on the real bus.

Each test writes a small scenario (no injections, no required services),
starts the director as a child process and asserts from the run's log. The
scenario's ``revert_all`` entry action is answered by a stand-in chaos
responder, so a test can tell whether a chapter's entry actions ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from events import (
    BaselineEstablished,
    Event,
    FaultFailed,
    FaultInjected,
    FaultRequested,
    FaultReverted,
    ServiceStarted,
    TicketClaimed,
    TicketEscalated,
    TicketLeaseRenewed,
    TicketOpened,
    TicketResolved,
    new_event,
    new_fault_id,
    new_ticket_id,
)
from events.bus import Bus
from events.commands import request
from events.envelope import utcnow
from events.subjects import command
from oplab.infra import RunningServer
from tests.e2e.conftest import RunLog, follow_run

REPO = Path(__file__).resolve().parents[2]

SCENARIO = """
name: director-test
subject: ratelimiter
default_fault: node_kill
faults:
  node_kill: {title: a test fault}
chapters:
  - id: opening
    title: Opening
    narration: Waiting for a ticket.
    advance: {when: {type: ticket.opened}, timeout_s: 30}
  - id: fixed
    title: Fixed
    narration: Waiting for the agent's fix.
    on_enter: [{action: revert_all}]
    advance: {when: {type: ticket.resolved, where: {by: agent}, after_fault: true}, timeout_s: 30}
  - id: pause
    title: Pause
    narration: A short pause.
    advance: {timeout_s: 0.3}
  - id: end
    title: End
    narration: "{summary}"
    on_enter: [{action: finish}]
    advance: {timeout_s: 0.1}
"""


class Director:
    """One director child process."""

    def __init__(self, proc: asyncio.subprocess.Process, instance: str) -> None:
        self.proc = proc
        self.instance = instance
        self.source = f"director/{instance}"

    async def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 15)

    def owns(self, event: Event) -> bool:
        return event.source == self.source


@pytest.fixture
async def director(nats_server: RunningServer, run_id: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    scenario = tmp_path / "scenario.yaml"
    started: list[Director] = []

    async def start(mode: str, instance: str, text: str = SCENARIO) -> Director:
        scenario.write_text(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_")}
        env.update(NATS_URL=nats_server.url, OPLAB_RUN=run_id, OPLAB_SCENARIO=str(scenario),
                   OPLAB_DIRECTOR_MODE=mode, OPLAB_FAULT="node_kill", OPLAB_INSTANCE=instance,
                   OPLAB_HOME=str(tmp_path / "oplab"), PYTHONUNBUFFERED="1")
        with (tmp_path / f"director-{instance}.log").open("wb") as out:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.director", cwd=REPO,
                                                        env=env, stdout=out, stderr=out)
        started.append(Director(proc, instance))
        return started[-1]

    yield start
    for d in started:
        if d.proc.returncode is None:
            d.proc.kill()
            await d.proc.wait()


@pytest.fixture
async def chaos_stand_in(bus: Bus) -> AsyncIterator[list[dict[str, Any]]]:
    """Answers ``cmd.chaos.revert`` like the chaos service would; records every request."""
    calls: list[dict[str, Any]] = []

    async def answer(msg) -> None:  # type: ignore[no-untyped-def]
        calls.append(json.loads(msg.data))
        await msg.respond(json.dumps({"reverted": [], "failed": []}).encode())

    sub = await bus.nc.subscribe(command("chaos", "revert"), cb=answer)
    yield calls
    await sub.unsubscribe()


@pytest.fixture
async def run_log(bus: Bus, run_id: str) -> AsyncIterator[RunLog]:
    log, replay = await follow_run(bus, run_id)
    yield log
    await replay.stop()  # type: ignore[attr-defined]


async def publish(bus: Bus, run: str, data: Any) -> int:
    return await bus.publish(new_event(data, run=run, source="tests"))


def chapter(kind: str, index: int, director: Director | None = None) -> Callable[[Event], bool]:
    def match(e: Event) -> bool:
        return (e.type == f"director.chapter_{kind}" and e.data.index == index
                and (director is None or director.owns(e)))

    return match


def ticket_opened() -> TicketOpened:
    return TicketOpened(ticket_id=new_ticket_id(), invariant="node_down", entity="node-1", subject="ratelimiter",
                        summary="node-1 is down", first_seen=utcnow())


async def test_auto_mode_advances_on_conditions_met_early_and_on_timeouts(
        director, chaos_stand_in, run_log: RunLog, bus: Bus, run_id: str) -> None:  # type: ignore[no-untyped-def]
    d = await director("auto", "auto-1")
    first = await run_log.wait_for(chapter("started", 0), 20, "chapter 1")
    assert first.data.timeout_s == 30 and "waits for ticket.opened" in first.data.advance
    # chapter 2's condition is met while chapter 1 is still showing: it must not be missed
    await publish(bus, run_id, FaultInjected(fault_id=new_fault_id(), kind="node_kill", target="node-1",
                                             expires_at=utcnow() + timedelta(minutes=1)))
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


AGENT_AT_WORK = """
name: director-agent-test
subject: ratelimiter
default_fault: node_kill
faults:
  node_kill: {title: a test fault}
chapters:
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
"""


async def test_an_agent_holding_a_lease_holds_the_story_past_the_chapter_timeout(
        director, run_log: RunLog, bus: Bus, run_id: str) -> None:  # type: ignore[no-untyped-def]
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


RUN_TICKET = """
name: director-run-ticket-test
subject: ratelimiter
default_fault: node_kill
faults:
  node_kill: {title: a test fault}
chapters:
  - id: verification
    title: Verification
    narration: Waiting for the run's ticket.
    advance: {when: {type: ticket.resolved, run_ticket: true}, timeout_s: 30}
"""


async def test_a_chapter_on_the_runs_ticket_ignores_a_second_ticket_of_the_same_fault(
        director, run_log: RunLog, bus: Bus, run_id: str) -> None:  # type: ignore[no-untyped-def]
    await director("auto", "run-ticket", RUN_TICKET)
    await run_log.wait_for(chapter("started", 0), 20, "chapter 1")
    await publish(bus, run_id, FaultInjected(fault_id=new_fault_id(), kind="node_kill", target="node-1",
                                             expires_at=utcnow() + timedelta(minutes=1)))
    scored, symptom = ticket_opened(), ticket_opened()
    await publish(bus, run_id, scored)
    await publish(bus, run_id, symptom)
    healed = await publish(bus, run_id, TicketResolved(ticket_id=symptom.ticket_id, by="self-healed"))
    status = await poll_status(bus, lambda st: st["seen_seq"] >= healed)
    assert not status["condition_met"]  # the symptom's ticket healed; the run's is still open
    await publish(bus, run_id, TicketResolved(ticket_id=scored.ticket_id, by="agent"))
    finished = await run_log.wait_for(chapter("finished", 0), 20, "chapter 1 finished")
    assert finished.data.reason == "condition"


async def test_interactive_mode_waits_for_the_key_and_a_restart_resumes_in_place(
        director, chaos_stand_in, run_log: RunLog, bus: Bus, run_id: str) -> None:  # type: ignore[no-untyped-def]
    a = await director("interactive", "a")
    first = await run_log.wait_for(chapter("started", 0, a), 20, "chapter 1")
    assert first.data.advance == "space: next" and first.data.timeout_s is None

    # the condition is met, the director sees it ... and still waits for the presenter
    seen = await publish(bus, run_id, ticket_opened())
    status = await poll_status(bus, lambda s: s["seen_seq"] >= seen)
    assert status["condition_met"] and status["chapter"] == 0 and not status["finished"]
    await request(bus.nc, "director", "next")
    assert (await run_log.wait_for(chapter("finished", 0), 10, "chapter 1 finished")).data.reason == "key"

    # chapter 2 runs its entry action, then the director is stopped mid-chapter
    await run_log.wait_for(chapter("started", 1, a), 10, "chapter 2")
    await poll_status(bus, lambda s: s["chapter"] == 1 and chaos_stand_in)
    assert await a.terminate() == 0
    assert (await run_log.wait_for(lambda e: e.type == "svc.stopping" and a.owns(e), 10, "a stopping")
            ).data.reason == "signal"

    # a new director resumes chapter 2 without re-running its entry (the stand-in sees no 2nd revert)
    b = await director("interactive", "b")
    await run_log.wait_for(chapter("started", 1, b), 20, "chapter 2 resumed")
    await request(bus.nc, "director", "next")
    assert (await run_log.wait_for(chapter("finished", 1, b), 10, "chapter 2 finished")).data.reason == "key"
    assert chaos_stand_in == [{"all": True}]
    for index in (2, 3):
        await run_log.wait_for(chapter("started", index, b), 10, f"chapter {index + 1}")
        await request(bus.nc, "director", "next")
        assert (await run_log.wait_for(chapter("finished", index, b), 10, "finished")).data.reason == "key"
    assert len(run_log.of_type("run.finished")) == 1
    assert [e.data.index for e in run_log.of_type("director.chapter_started")] == [0, 1, 1, 2, 3]
    assert len(run_log.of_type("run.started")) == 1
    assert await b.terminate() == 0

    # with run.finished in the log, a third director stays idle
    c = await director("interactive", "c")
    await run_log.wait_for(lambda e: e.type == "svc.started" and c.owns(e), 20, "c started")
    assert (await poll_status(bus, lambda s: s["finished"]))["chapter"] == 3
    assert await c.terminate() == 0
    await run_log.wait_for(lambda e: e.type == "svc.stopping" and c.owns(e), 10, "c stopping")
    assert not [e for _, e in run_log.events if c.owns(e) and e.domain in ("director", "run")]


async def poll_status(bus: Bus, predicate: Callable[[dict[str, Any]], Any], timeout: float = 10.0) -> dict[str, Any]:
    """Ask ``cmd.director.status`` until ``predicate`` holds (deadline ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status = await request(bus.nc, "director", "status", timeout=2.0)
        if predicate(status):
            return status
        if loop.time() > deadline:
            raise AssertionError(f"director status never matched; last {status}")
        await asyncio.sleep(0.05)  # polling a status command, bounded by the deadline


INJECTING = """
name: director-inject-test
subject: ratelimiter
default_fault: node_kill
faults:
  node_kill: {title: a test fault}
chapters:
  - id: inject
    title: Breaking it
    narration: A countdown, then the injection.
    countdown_s: 1.5
    on_enter: [{action: inject, kind: "{fault}", ttl_s: 60}]
    advance: {when: {type: ticket.opened, after_fault: true}, timeout_s: 30}
  - id: detection
    title: Detection
    narration: Waiting for the fix.
    advance: {when: {type: ticket.resolved, run_ticket: true}, timeout_s: 30}
  - id: end
    title: End
    narration: "{summary}"
    on_enter: [{action: finish}]
    advance: {timeout_s: 0.1}
"""


class ChaosInjectStandIn:
    """Answers ``cmd.chaos.inject`` with a fault and records it in the log as chaos would; records
    every request. ``hold`` keeps the next reply back until released (a requester may die meanwhile)."""

    def __init__(self, bus: Bus, run_id: str) -> None:
        self.bus, self.run_id = bus, run_id
        self.calls: list[dict[str, Any]] = []
        self.received = asyncio.Event()
        self.hold: asyncio.Event | None = None

    async def answer(self, msg) -> None:  # type: ignore[no-untyped-def]
        body = json.loads(msg.data)
        self.calls.append(body)
        self.received.set()
        if self.hold is not None:
            await self.hold.wait()
        fault_id = new_fault_id()
        await publish(self.bus, self.run_id, FaultRequested(fault_id=fault_id, kind=body["kind"], ttl_s=60,
                                                            request_id=body.get("request_id")))
        await publish(self.bus, self.run_id, FaultInjected(fault_id=fault_id, kind=body["kind"], target="node-1",
                                                           expires_at=utcnow() + timedelta(minutes=1)))
        await msg.respond(json.dumps({"fault": {"fault_id": fault_id}}).encode())


@pytest.fixture
async def chaos_injects(bus: Bus, run_id: str) -> AsyncIterator[ChaosInjectStandIn]:
    stand_in = ChaosInjectStandIn(bus, run_id)
    sub = await bus.nc.subscribe(command("chaos", "inject"), cb=stand_in.answer)
    yield stand_in
    if stand_in.hold is not None:
        stand_in.hold.set()
    await sub.unsubscribe()


async def test_a_director_killed_in_the_inject_countdown_is_succeeded_by_one_that_injects_once(
        director, chaos_injects: ChaosInjectStandIn, run_log: RunLog, run_id: str) -> None:  # type: ignore[no-untyped-def]
    a = await director("auto", "a", INJECTING)
    await run_log.wait_for(chapter("started", 0, a), 20, "the inject chapter")
    a.proc.kill()  # in the countdown: nothing injected yet
    await a.proc.wait()
    assert chaos_injects.calls == []

    b = await director("auto", "b", INJECTING)
    taken = await run_log.wait_for(lambda e: e.type == "director.action_taken" and b.owns(e), 20, "the injection")
    assert taken.data.kind == "inject" and taken.data.result["ok"] is True
    assert [c["request_id"] for c in chaos_injects.calls] == [f"{run_id}/director-inject-test/0/0"]
    assert len(run_log.of_type("chaos.fault_injected")) == 1
    assert await b.terminate() == 0


async def test_a_director_killed_before_it_heard_the_answer_asks_again_with_the_same_request(
        director, chaos_injects: ChaosInjectStandIn, run_log: RunLog) -> None:  # type: ignore[no-untyped-def]
    chaos_injects.hold = asyncio.Event()
    a = await director("auto", "a", INJECTING)
    await asyncio.wait_for(chaos_injects.received.wait(), 20)
    a.proc.kill()  # the request reached chaos; its answer never reached the director
    await a.proc.wait()
    chaos_injects.hold.set()

    b = await director("auto", "b", INJECTING)
    taken = await run_log.wait_for(lambda e: e.type == "director.action_taken" and b.owns(e), 20, "the injection")
    assert taken.data.result["ok"] is True
    first, again = chaos_injects.calls  # chaos answers a known request_id with its fault (tests/services/
    # test_chaos_recovery.py): a repeat with the same id injects nothing new
    assert {**first, "causation": None} == {**again, "causation": None}
    # each names as its cause the chapter_started of the director that asked (b announced the chapter again)
    announced = [e.id for e in run_log.of_type("director.chapter_started") if e.data.index == 0]
    assert [first["causation"], again["causation"]] == announced
    assert len(run_log.of_type("director.action_taken")) == 1
    assert await b.terminate() == 0


@pytest.mark.parametrize("lost", ["inject_failed", "reverted"])
async def test_a_fault_lost_before_detection_ends_the_story_at_once(
        lost: str, director, bus: Bus, run_id: str, run_log: RunLog) -> None:  # type: ignore[no-untyped-def]
    async def chaos_loses_it(msg) -> None:  # type: ignore[no-untyped-def]
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
    why = "could not be injected (node-1 vanished)" if lost == "inject_failed" else "reverted (explicit) before"
    assert why in run_log.of_type("run.finished")[0].data.summary["ended"]
    if lost == "inject_failed":  # asked for and never in: a failure, never read as "no fault"
        assert run_log.of_type("run.finished")[0].data.outcome == "not_injected"
    summary_chapter = run_log.of_type("director.chapter_started")[-1]
    assert summary_chapter.data.chapter == "end" and why in summary_chapter.data.narration
    assert await d.terminate() == 0


WITH_MONITOR = """
name: director-baseline-test
subject: ratelimiter
default_fault: node_kill
requires_services: [monitor]
faults:
  node_kill: {title: a test fault}
chapters:
  - id: opening
    title: Opening
    narration: The story starts once the monitor judges.
    advance: {timeout_s: 0.1}
"""


async def test_the_story_waits_until_the_monitor_has_begun_judging(
        director, bus: Bus, run_id: str, run_log: RunLog) -> None:  # type: ignore[no-untyped-def]
    await director("auto", "baseline", WITH_MONITOR)
    up = await publish(bus, run_id, ServiceStarted(service="monitor", instance="m", version="t", pid=1))
    status = await poll_status(bus, lambda st: st["seen_seq"] >= up)
    assert status["chapter"] is None  # the monitor is up but has not seen the subject whole yet
    await publish(bus, run_id, BaselineEstablished(healthy=True, waited_s=0.1))
    started = await run_log.wait_for(chapter("started", 0), 20, "the first chapter")
    assert started.data.chapter == "opening"

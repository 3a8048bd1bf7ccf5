"""The real director (``python -m services.director``) stopped or killed mid-story, and its successor.

A director restarted mid-chapter resumes that chapter without running its entry actions again;
once ``run.finished`` is in the log, a new director stays idle. A director killed in an inject
chapter's countdown is succeeded by one that injects once; one killed after chaos got its request
but before it heard the answer asks again with the same request id (chaos answers a known request
with its fault: ``test_chaos_recovery.py``). Chaos is a stand-in (``tests/services/conftest.py``).
"""

from __future__ import annotations

import asyncio

from events.bus import Bus
from events.commands import request
from oplab.run_log import RunLog
from tests.services.director_harness import (
    INJECTING,
    ChaosInjectStandIn,
    StartDirector,
    chapter,
    poll_status,
    publish,
    ticket_opened,
)


async def test_interactive_mode_waits_for_the_key_and_a_restart_resumes_in_place(
        director: StartDirector, chaos_stand_in: list[dict[str, object]], run_log: RunLog, bus: Bus,
        run_id: str) -> None:
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


async def test_a_director_killed_in_the_inject_countdown_is_succeeded_by_one_that_injects_once(
        director: StartDirector, chaos_injects: ChaosInjectStandIn, run_log: RunLog, run_id: str) -> None:
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
        director: StartDirector, chaos_injects: ChaosInjectStandIn, run_log: RunLog) -> None:
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

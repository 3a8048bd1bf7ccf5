"""The real director (``python -m services.director``) stopped or killed mid-story, and its successor.

A director restarted mid-chapter resumes that chapter without running its entry actions again;
once ``run.finished`` is in the log, a new director stays idle. A director killed in an inject
chapter's countdown is succeeded by one that injects once; one killed after chaos got its request
but before it heard the answer asks again with the same request id (chaos answers a known request
with its fault: ``test_chaos_recovery.py``). Chaos is a stand-in (``tests/services/conftest.py``).
"""

from __future__ import annotations

import asyncio

from tests.services.director_harness import INJECTING, ChaosInjectStandIn, DirectedRun, StartDirector, ticket_opened


async def test_interactive_mode_waits_for_the_key_and_a_restart_resumes_in_place(
        director: StartDirector, run: DirectedRun, chaos_stand_in: list[dict[str, object]]) -> None:
    a = await director("interactive", "a")
    first = await run.chapter_started(0, a)
    assert first.data.advance == "space: next" and first.data.timeout_s is None

    # the condition is met, the director sees it ... and still waits for the presenter
    seen = await run.publish(ticket_opened())
    status = await run.status(lambda s: s["seen_seq"] >= seen)
    assert status["condition_met"] and status["chapter"] == 0 and not status["finished"]
    await run.next()
    assert (await run.chapter_finished(0)).data.reason == "key"

    # chapter 2 runs its entry action, then the director is stopped mid-chapter
    await run.chapter_started(1, a)
    await run.status(lambda s: s["chapter"] == 1 and chaos_stand_in)
    assert await a.terminate() == 0
    assert (await run.recorded_by(a, "svc.stopping")).data.reason == "signal"

    # a new director resumes chapter 2 without re-running its entry (the stand-in sees no 2nd revert)
    b = await director("interactive", "b")
    await run.chapter_started(1, b)
    await run.next()
    assert (await run.chapter_finished(1, b)).data.reason == "key"
    assert chaos_stand_in == [{"all": True}]
    for index in (2, 3):
        await run.chapter_started(index, b)
        await run.next()
        assert (await run.chapter_finished(index, b)).data.reason == "key"
    assert len(run.log.of_type("run.finished")) == 1
    assert [e.data.index for e in run.log.of_type("director.chapter_started")] == [0, 1, 1, 2, 3]
    assert len(run.log.of_type("run.started")) == 1
    assert await b.terminate() == 0

    # with run.finished in the log, a third director stays idle
    c = await director("interactive", "c")
    await run.recorded_by(c, "svc.started")
    assert (await run.status(lambda s: s["finished"]))["chapter"] == 3
    assert await c.terminate() == 0
    await run.recorded_by(c, "svc.stopping")
    assert not [e for _, e in run.log.events if c.owns(e) and e.domain in ("director", "run")]


async def test_a_director_killed_in_the_inject_countdown_is_succeeded_by_one_that_injects_once(
        director: StartDirector, run: DirectedRun, chaos_injects: ChaosInjectStandIn) -> None:
    a = await director("auto", "a", INJECTING)
    await run.chapter_started(0, a)  # the inject chapter
    a.proc.kill()  # in the countdown: nothing injected yet
    await a.proc.wait()
    assert chaos_injects.calls == []

    b = await director("auto", "b", INJECTING)
    taken = await run.recorded_by(b, "director.action_taken")  # the injection
    assert taken.data.kind == "inject" and taken.data.result["ok"] is True
    assert [c["request_id"] for c in chaos_injects.calls] == [f"{run.id}/director-inject-test/0/0"]
    assert len(run.log.of_type("chaos.fault_injected")) == 1
    assert await b.terminate() == 0


async def test_a_director_killed_before_it_heard_the_answer_asks_again_with_the_same_request(
        director: StartDirector, run: DirectedRun, chaos_injects: ChaosInjectStandIn) -> None:
    chaos_injects.hold = asyncio.Event()
    a = await director("auto", "a", INJECTING)
    await asyncio.wait_for(chaos_injects.received.wait(), 20)
    a.proc.kill()  # the request reached chaos; its answer never reached the director
    await a.proc.wait()
    chaos_injects.hold.set()

    b = await director("auto", "b", INJECTING)
    taken = await run.recorded_by(b, "director.action_taken")  # the injection
    assert taken.data.result["ok"] is True
    first, again = chaos_injects.calls  # chaos answers a known request_id with its fault (tests/services/
    # test_chaos_recovery.py): a repeat with the same id injects nothing new
    assert {**first, "causation": None} == {**again, "causation": None}
    # each names as its cause the chapter_started of the director that asked (b announced the chapter again)
    announced = [e.id for e in run.log.of_type("director.chapter_started") if e.data.index == 0]
    assert [first["causation"], again["causation"]] == announced
    assert len(run.log.of_type("director.action_taken")) == 1
    assert await b.terminate() == 0

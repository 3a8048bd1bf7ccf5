"""The director's fold of the run: when the story's fault counts as lost before anyone detected it."""

from __future__ import annotations

from datetime import timedelta

from events import FaultFailed, FaultInjected, FaultRequested, FaultReverted, Payload, RunStarted, new_event
from events.envelope import utcnow
from events.replay import Delivered
from services.director.story import Story

RUN = "r-story"
FAULT = "f-00000000a1"


def told(*payloads: Payload) -> Story:
    story = Story("ratelimiter-demo", [], control=False, may_end=lambda: True)
    for seq, data in enumerate(payloads, start=1):
        event = new_event(data, run=RUN, source="test")
        story.note(data, Delivered(event=event, seq=seq, subject=f"lab.{RUN}.{event.type}"))
    return story


def requested() -> FaultRequested:
    return FaultRequested(fault_id=FAULT, kind="node_kill", target="node-1", ttl_s=60)


def injected() -> FaultInjected:
    return FaultInjected(fault_id=FAULT, kind="node_kill", target="node-1", expires_at=utcnow() + timedelta(minutes=1))


def test_a_fault_that_never_got_in_is_lost() -> None:
    story = told(RunStarted(scenario="ratelimiter-demo", subject="ratelimiter", fault="node_kill"), requested(),
                 FaultFailed(fault_id=FAULT, stage="inject", reason="node-1 vanished"))
    assert story.lost == "the fault could not be injected (node-1 vanished)"


def test_a_failed_inject_after_the_injection_leaves_the_fault_in_effect_until_its_revert() -> None:
    # a lost acknowledgement whose undo failed: the fault is in effect, chaos retries its revert
    start = (RunStarted(scenario="ratelimiter-demo", subject="ratelimiter", fault="node_kill"), requested(),
             injected(), FaultFailed(fault_id=FAULT, stage="inject", reason="could not record it; undoing failed"))
    assert told(*start).lost is None
    undone = told(*start, FaultReverted(fault_id=FAULT, reason="abandoned", changed=True))
    assert undone.lost == "the fault was reverted (abandoned) before anyone detected it"

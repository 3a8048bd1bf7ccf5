"""``oplab state``'s document and lines: the active faults are the one fold's (projections.faults)."""

from __future__ import annotations

from events import FaultFailed
from oplab.run_state import fold_until, state_document, state_lines
from tests.console.script import Story

RUN = "r20261124t235800-ab12"


def state(story: Story) -> dict[str, object]:
    view, seq, time = fold_until(RUN, enumerate(story.events, start=1), None)
    return state_document(view, seq, time)


def test_a_fault_is_in_the_state_from_its_injection_until_its_revert_whatever_failed_between() -> None:
    s = Story(RUN)
    s.fault(10, ttl_s=60)
    s.at(10.5, FaultFailed(fault_id="f-1", stage="inject", reason="could not record the injection; undone"))
    s.at(15, FaultFailed(fault_id="f-1", stage="verify", reason="not effective within 5s"))
    doc = state(s)
    assert doc["faults"] == [{"fault_id": "f-1", "kind": "node_kill", "target": "rl-2", "status": "injected",
                              "since": s.t(10).isoformat()}]
    assert any(line.startswith("faults    node_kill on rl-2 since ") and line.endswith("(injected, f-1)")
               for line in state_lines(doc))
    s.reverted(70, reason="ttl", changed=False)
    doc = state(s)
    assert doc["faults"] == [] and "faults    none active" in state_lines(doc)


def test_a_fault_that_never_got_in_is_not_in_the_state() -> None:
    s = Story(RUN)
    s.fault(10)
    s.events.pop()  # the request only
    s.at(10.1, FaultFailed(fault_id="f-1", stage="inject", reason="target rl-2 already has fault f-0"))
    assert state(s)["faults"] == []

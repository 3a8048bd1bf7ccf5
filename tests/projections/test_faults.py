"""FaultFold: the one rule of which faults are active - from ``fault_injected`` until ``fault_reverted``,
whatever failed in between - on each order of events the chaos service writes."""

from __future__ import annotations

from events import FaultAdopted, FaultFailed, FaultRequested, FaultReverted
from projections.faults import FaultFold, FaultLife
from tests.console.script import Story

RUN = "r20261124t235800-ab12"
LOST_ACK = "could not record the injection: TimeoutError(); undone (rl-2 restarted)"


def fold(story: Story) -> FaultFold:
    return story.folded(FaultFold(RUN))


def life(story: Story, fault_id: str = "f-1") -> FaultLife:
    return fold(story).faults[fault_id]


def test_a_fault_is_active_from_its_injection_until_its_revert() -> None:
    s = Story(RUN)
    s.at(10, FaultRequested(fault_id="f-1", kind="node_kill", target="rl-2", ttl_s=60))
    assert life(s).pending and not life(s).active
    s.events.pop()
    s.fault(10, ttl_s=60)
    injected = life(s)
    assert (injected.status, injected.active, injected.pending) == ("injected", True, False)
    assert (injected.kind, injected.target, injected.undo, injected.expires_at) == (
        "node_kill", "rl-2", {"restart": "rl-2"}, s.t(70))
    s.effective(10.5)
    assert (life(s).status, life(s).effective, life(s).active) == ("effective", True, True)
    s.reverted(20, reason="explicit", changed=True)
    ended = life(s)
    assert (ended.status, ended.active, ended.reverted_at, ended.revert_reason, ended.revert_changed) == (
        "reverted", False, s.t(20), "explicit", True)
    assert fold(s).active() == []


def test_a_revert_is_final_and_the_first_one_is_when_it_ended() -> None:
    s = Story(RUN)
    s.fault(10)
    s.reverted(20, reason="explicit")
    s.effective(20.1)  # a confirmation that raced the revert
    s.reverted(30, reason="shutdown", changed=False)
    ended = life(s)
    assert (ended.status, ended.active, ended.reverted_at, ended.revert_reason) == ("reverted", False, s.t(20),
                                                                                   "explicit")


def test_a_failed_verification_leaves_the_fault_active_and_unconfirmed() -> None:
    s = Story(RUN)
    s.fault(10)
    s.at(15, FaultFailed(fault_id="f-1", stage="verify", reason="not effective within 5s: no evidence yet"))
    unconfirmed = life(s)
    assert (unconfirmed.status, unconfirmed.active, unconfirmed.effective) == ("injected", True, False)
    assert unconfirmed.error == "verify: not effective within 5s: no evidence yet"
    s.reverted(70, reason="ttl")
    assert (life(s).active, life(s).error) == (False, None)


def test_a_failed_revert_leaves_the_fault_active_until_a_retry_reverts_it() -> None:
    s = Story(RUN)
    s.fault(10)
    s.effective(10.5)
    s.at(70, FaultFailed(fault_id="f-1", stage="revert", reason="switchboard unreachable"))
    stuck = life(s)
    assert (stuck.status, stuck.active, stuck.error) == ("effective", True, "revert: switchboard unreachable")
    s.reverted(71, reason="ttl")
    assert (life(s).status, life(s).active, life(s).failures) == ("reverted", False,
                                                                  [("revert", "switchboard unreachable")])


def test_a_failed_injection_with_no_injection_on_record_never_got_in() -> None:
    s = Story(RUN)
    s.at(10, FaultRequested(fault_id="f-1", kind="node_kill", target="rl-2", ttl_s=60))
    s.at(10.1, FaultFailed(fault_id="f-1", stage="inject", reason="target rl-2 already has fault f-0"))
    failed = life(s)
    assert (failed.status, failed.active, failed.pending, failed.injected) == ("failed", False, False, False)
    assert failed.error == "inject: target rl-2 already has fault f-0"


def test_an_injection_whose_acknowledgement_was_lost_stays_active_until_chaos_reverts_it() -> None:
    """The order the chaos service writes (services.chaos.commands): ``fault_injected`` stored but its publish
    raised, so the injection is undone and recorded as failed; the next instance adopts what the log carries
    as injected and reverts it at its TTL, finding nothing left to undo."""
    s = Story(RUN)
    s.fault(10, ttl_s=60)
    s.at(25, FaultFailed(fault_id="f-1", stage="inject", reason=LOST_ACK))
    held = life(s)
    assert (held.status, held.active, held.injected) == ("injected", True, True)
    assert held.error == f"inject: {LOST_ACK}"
    s.at(40, FaultAdopted(fault_id="f-1", expires_at=s.t(70)))
    assert (life(s).active, life(s).adopted, life(s).adopted_at) == (True, True, s.t(40))
    s.reverted(70, reason="ttl", changed=False)
    assert (life(s).status, life(s).active, life(s).revert_changed) == ("reverted", False, False)


def test_an_adopted_fault_is_active_also_when_the_log_is_read_from_after_its_injection() -> None:
    s = Story(RUN)
    s.at(40, FaultAdopted(fault_id="f-9", expires_at=s.t(100)))
    adopted = life(s, "f-9")
    assert (adopted.status, adopted.active, adopted.injected, adopted.kind, adopted.expires_at) == (
        "injected", True, False, "?", s.t(100))
    assert adopted.ttl_remaining_s(s.t(70)) == 30.0


def test_an_adopted_fault_keeps_its_story_and_takes_the_ttl_it_was_injected_with() -> None:
    s = Story(RUN)
    s.fault(10, ttl_s=60)
    s.effective(10.5)
    s.at(30, FaultAdopted(fault_id="f-1", expires_at=s.t(70)))
    adopted = life(s)
    assert (adopted.status, adopted.effective, adopted.adopted, adopted.injected_at) == (
        "effective", True, True, s.t(10))


def test_a_payload_folds_without_a_time_and_events_of_other_runs_are_ignored() -> None:
    faults = FaultFold(RUN)
    s = Story(RUN)
    s.fault(10)
    for event in s.events:
        assert faults.fold(event.data) is faults.faults["f-1"]
    assert faults.faults["f-1"].active and faults.faults["f-1"].injected_at is None
    assert faults.fold(FaultReverted(fault_id="f-1", reason="explicit")) is faults.faults["f-1"]
    assert not faults.faults["f-1"].active
    other = Story("r20261124t235900-cd34")
    other.fault(10, fault_id="f-2")
    assert [faults.apply(e) for e in other.events] == [False, False] and "f-2" not in faults.faults

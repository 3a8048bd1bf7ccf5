"""RunTimeline: chapters, faults, violations, and the scored summary the headless demo prints."""

from __future__ import annotations

import json

import pytest

from events import (
    ChapterFinished,
    FaultFailed,
    RunFinished,
    ScenarioRestarted,
    TicketActionExecuted,
    TicketActionRequested,
    TicketReopened,
    decode,
    encode,
)
from projections.timeline import RunSummary, RunTimeline
from tests.console.script import Story, node_kill_story

RUN = "r20261124t235800-ab12"


def fold(story: Story) -> RunTimeline:
    return story.folded(RunTimeline(story.run))


def acted(s: Story, at: float, ticket_id: str = "tk-1", *, ok: bool = True) -> None:
    """A mutating action on the ticket, requested and executed at ``at``."""
    action_id = f"a{len(s.events)}"
    s.ticket(at, TicketActionRequested(ticket_id=ticket_id, action_id=action_id, tool="restart_node"))
    s.ticket(at, TicketActionExecuted(ticket_id=ticket_id, action_id=action_id, tool="restart_node", ok=ok))


def fault_story(*, ttl_revert_at: float | None = None, cleared_at: float | None = 13.7,
                terminal: str = "resolved", revert_changed: bool | None = True) -> Story:
    """Fault injected at 10.0, ticket opened at 11.2, agent works from 11.5."""
    s = Story(RUN)
    s.detected(ttl_s=3.0 if ttl_revert_at is not None else 120.0)
    s.agent_session(11.5)
    s.aftermath(revert_at=ttl_revert_at, reason="ttl", changed=revert_changed, cleared_at=cleared_at)
    s.ending(terminal, verified_at=14.0, escalated_at=14.1)
    return s


def test_happy_path_summary_is_exact() -> None:
    summary = fold(node_kill_story(RUN)).summary()
    assert summary == RunSummary(
        run=RUN, fault="node_kill", ticket="tk-1", outcome="resolved", resolved_by="agent",
        ttd_s=1.2, ttm_s=2.5, scenario="ratelimiter-demo", fault_id="f-1", target="rl-2",
        invariant="node_down", entity="rl-2", agent="agent-1", fault_reverted="explicit",
        tickets_after_fault=1, actions_after_fault=summary.actions_after_fault, open_tickets=0,
    )
    assert summary.agent_resolved


def test_actions_and_open_tickets_after_the_fault_are_counted() -> None:
    story = node_kill_story(RUN)
    executed = [e for e in story.events if e.type == "ticket.action_executed"]
    summary = fold(story).summary()
    assert summary.actions_after_fault == len(executed) >= 1
    assert summary.open_tickets == 0


def test_summary_json_line_leads_with_the_demo_contract() -> None:
    line = fold(node_kill_story(RUN)).summary().model_dump_json()
    doc = json.loads(line)
    assert list(doc)[:7] == ["run", "fault", "ticket", "outcome", "resolved_by", "ttd_s", "ttm_s"]
    assert doc["ttd_s"] == 1.2 and doc["ttm_s"] == 2.5


def test_summary_is_the_same_from_decoded_bytes() -> None:
    story = node_kill_story(RUN)
    tl = RunTimeline()
    for event in story.events:
        decoded = decode(encode(event))
        assert not hasattr(decoded, "reason")
        tl.apply(decoded)  # type: ignore[arg-type]
    assert tl.summary() == fold(story).summary()


def test_ttl_revert_before_the_clear_is_self_healed_not_the_agent() -> None:
    summary = fold(fault_story(ttl_revert_at=13.0, cleared_at=13.7)).summary()
    assert summary.outcome == "resolved"
    assert summary.resolved_by == "self-healed"
    assert summary.fault_reverted == "ttl"
    assert summary.ttm_s is None  # the undo cleared it: not a mitigation, no time to mitigate
    assert not summary.agent_resolved


def test_a_revert_that_found_nothing_to_undo_leaves_the_credit_to_the_agent() -> None:
    summary = fold(fault_story(ttl_revert_at=13.0, cleared_at=13.7, revert_changed=False)).summary()
    assert summary.resolved_by == "agent"
    assert summary.agent_resolved


def test_a_revert_recorded_before_changed_was_kept_still_counts_as_healing() -> None:
    summary = fold(fault_story(ttl_revert_at=13.0, cleared_at=13.7, revert_changed=None)).summary()
    assert summary.resolved_by == "self-healed"


def test_ttl_revert_at_the_same_instant_as_the_clear_is_self_healed() -> None:
    summary = fold(fault_story(ttl_revert_at=13.7, cleared_at=13.7)).summary()
    assert summary.resolved_by == "self-healed"


def test_ttl_revert_after_the_clear_leaves_the_credit_to_the_agent() -> None:
    summary = fold(fault_story(ttl_revert_at=13.9, cleared_at=13.7)).summary()
    assert summary.resolved_by == "agent"
    assert summary.agent_resolved


def test_ttl_revert_before_resolution_without_a_clear_is_self_healed() -> None:
    summary = fold(fault_story(ttl_revert_at=12.0, cleared_at=None)).summary()
    assert summary.outcome == "resolved"
    assert summary.resolved_by == "self-healed"
    assert summary.ttm_s is None


def test_escalated_ticket() -> None:
    summary = fold(fault_story(cleared_at=None, terminal="escalated")).summary()
    assert (summary.outcome, summary.resolved_by, summary.ticket) == ("escalated", None, "tk-1")
    assert summary.ttd_s == 1.2
    assert summary.ttm_s is None
    assert not summary.agent_resolved


def test_escalated_then_cleared_by_the_undo_credits_nobody_and_measures_no_ttm() -> None:
    summary = fold(fault_story(ttl_revert_at=20.0, cleared_at=20.5, terminal="escalated")).summary()
    assert summary.outcome == "escalated"
    assert summary.resolved_by is None
    assert summary.ttm_s is None


def test_escalated_then_cleared_after_the_agents_action_still_measures_ttm_but_credits_nobody() -> None:
    summary = fold(fault_story(cleared_at=20.5, terminal="escalated")).summary()
    assert (summary.outcome, summary.resolved_by, summary.ttm_s) == ("escalated", None, 9.3)


def test_open_ticket_while_the_agent_works() -> None:
    summary = fold(fault_story(cleared_at=None, terminal="none")).summary()
    assert (summary.outcome, summary.resolved_by, summary.ttm_s) == ("open", None, None)
    assert summary.ttd_s == 1.2


def test_reopened_ticket_is_open_again() -> None:
    s = fault_story()
    s.ticket(20, TicketReopened(ticket_id="tk-1", reason="violation back"))
    summary = fold(s).summary()
    assert (summary.outcome, summary.resolved_by) == ("open", None)


def test_undetected_when_no_ticket_follows_the_fault() -> None:
    s = Story(RUN)
    s.run_started(0)
    s.fault(10)
    s.violated(11)
    summary = fold(s).summary()
    assert summary == RunSummary(run=RUN, fault="node_kill", ticket=None, outcome="undetected",
                                 resolved_by=None, ttd_s=None, ttm_s=None, scenario="ratelimiter-demo",
                                 fault_id="f-1", target="rl-2")


def test_a_named_fault_that_never_got_injected_is_not_injected_not_no_fault() -> None:
    s = Story(RUN)
    s.run_started(0, fault="counter_drift")
    s.opened(3)
    summary = fold(s).summary()
    assert (summary.outcome, summary.fault, summary.ticket) == ("not_injected", "counter_drift", None)
    assert not summary.agent_resolved


def test_a_failed_injection_is_not_injected_and_names_the_requested_kind() -> None:
    s = Story(RUN)
    s.run_started(0, fault=None)
    s.fault(10, kind="counter_drift", target="user:1")
    s.events.pop()  # keep the request, drop the injection
    s.at(10.1, FaultFailed(fault_id="f-1", stage="inject", reason="no such key"))
    tl = fold(s)
    assert tl.summary().outcome == "not_injected"
    assert tl.summary().fault == "counter_drift"
    assert tl.faults["f-1"].status == "failed"
    assert tl.active_faults == []


def test_an_injection_whose_acknowledgement_was_lost_stays_active_until_it_is_reverted() -> None:
    """``fault_injected`` stored, its publish failed, the injection undone and recorded as a failed
    injection: chaos adopts what the log carries as injected and reverts it at its TTL (projections.faults)."""
    s = Story(RUN)
    s.run_started(0)
    s.fault(10, ttl_s=60)
    s.at(25, FaultFailed(fault_id="f-1", stage="inject", reason="could not record the injection; undone"))
    tl = fold(s)
    [held] = tl.active_faults
    assert (held.fault_id, held.status, held.error) == ("f-1", "injected",
                                                       "inject: could not record the injection; undone")
    assert tl.summary().outcome == "undetected" and tl.summary().fault_id == "f-1"
    s.reverted(70, reason="ttl", changed=False)
    tl = fold(s)
    assert tl.active_faults == [] and tl.faults["f-1"].status == "reverted"


def test_ticket_before_the_fault_is_ignored_and_the_first_after_it_wins() -> None:
    s = Story(RUN)
    s.opened(2, ticket_id="tk-early", invariant="over_limit", entity="user:9")
    s.fault(10)
    s.opened(12.5, ticket_id="tk-second", invariant="over_limit", entity="user:1")
    s.opened(11.0, ticket_id="tk-first")  # logged later, opened earlier
    acted(s, 11.5, "tk-first")
    s.cleared(12.0)
    s.resolved(12.1, ticket_id="tk-first")
    summary = fold(s).summary()
    assert summary.ticket == "tk-first"
    assert summary.ttd_s == 1.0
    assert summary.ttm_s == 1.0


def test_ttm_uses_the_clear_of_the_tickets_own_invariant_and_entity_after_it_opened() -> None:
    s = Story(RUN)
    s.cleared(5.0)  # an earlier blip of the same violation
    s.fault(10)
    s.opened(11)
    acted(s, 11.5)
    s.cleared(12, entity="rl-3")  # another entity
    s.cleared(12.5, invariant="over_limit")  # another invariant
    s.cleared(14.25)
    s.cleared(16.0)  # a later recurrence
    s.resolved(14.5)
    summary = fold(s).summary()
    assert summary.ttm_s == 3.25
    assert summary.resolved_by == "agent"


def test_durations_are_rounded_to_milliseconds() -> None:
    s = Story(RUN)
    s.fault(10)
    s.opened(10.1234567)
    acted(s, 10.5)
    s.cleared(11.0004)
    s.resolved(11.1)
    summary = fold(s).summary()
    assert summary.ttd_s == 0.123
    assert summary.ttm_s == pytest.approx(0.877)


def test_active_faults_follow_each_fault_life() -> None:
    s = Story(RUN)
    s.fault(10, fault_id="f-a", target="rl-1", ttl_s=60)
    s.fault(11, fault_id="f-b", kind="counter_drift", target="user:1", ttl_s=30)
    s.effective(11.5, fault_id="f-b")
    s.fault(12, fault_id="f-c", target="rl-3")
    s.reverted(13, fault_id="f-c", reason="explicit")
    s.at(14, FaultFailed(fault_id="f-a", stage="revert", reason="container gone"))
    tl = fold(s)
    assert [f.fault_id for f in tl.active_faults] == ["f-a", "f-b"]
    a, b, c = tl.faults["f-a"], tl.faults["f-b"], tl.faults["f-c"]
    assert (a.status, a.error) == ("injected", "revert: container gone")
    assert (b.status, b.kind, b.target) == ("effective", "counter_drift", "user:1")
    assert (c.status, c.revert_reason, c.active) == ("reverted", "explicit", False)
    assert a.ttl_remaining_s(s.t(40)) == 30.0
    assert b.ttl_remaining_s(s.t(100)) == 0.0
    assert tl.first_injected_fault() is a


def test_chapters_and_countdown() -> None:
    s = Story(RUN)
    s.run_started(0)
    s.chapter(1, 1, "Welcome")
    s.chapter(5, 3, "Fault injection", narration="Chaos strikes.", advance="auto", timeout_s=30)
    tl = fold(s)
    ch = tl.chapter
    assert ch is not None
    assert (ch.index, ch.total, ch.title, ch.narration, ch.advance) == (3, 7, "Fault injection",
                                                                       "Chaos strikes.", "auto")
    assert ch.number == 4  # index is 0-based, as the director sends it
    assert ch.started_at == s.t(5)
    assert ch.remaining_s(s.t(20)) == 15.0
    assert ch.remaining_s(s.t(50)) == 0.0
    assert tl.chapters_started == 2
    tl.apply(s.at(6, ChapterFinished(scenario="ratelimiter-demo", index=3, chapter="fault_injection",
                                     reason="key")))
    assert ch.finished_at == s.t(6) and ch.finish_reason == "key"
    assert ch.remaining_s(s.t(7)) is None
    tl.apply(s.at(7, ScenarioRestarted(scenario="ratelimiter-demo")))
    assert tl.chapter is None


def test_run_start_finish_and_elapsed() -> None:
    s = Story(RUN)
    s.run_started(0, fault="node_kill")
    tl = fold(s)
    assert (tl.scenario, tl.subject, tl.requested_fault) == ("ratelimiter-demo", "ratelimiter", "node_kill")
    assert tl.elapsed_s(s.t(42)) == 42.0
    assert not tl.finished
    tl.apply(s.at(60, RunFinished(outcome="resolved")))
    assert tl.finished and tl.run_outcome == "resolved"
    assert tl.elapsed_s(s.t(100)) == 60.0


def test_violations_currently_open() -> None:
    s = Story(RUN)
    s.violated(1, entity="rl-2")
    s.violated(2, invariant="over_limit", entity="user:1")
    s.cleared(3, entity="rl-2")
    tl = fold(s)
    assert list(tl.violations) == [("over_limit", "user:1")]
    assert tl.violations[("over_limit", "user:1")].summary == "user:1 is down"


def test_events_of_other_runs_are_ignored() -> None:
    tl = fold(node_kill_story(RUN))
    other = node_kill_story("r-other")
    other.fault(50, fault_id="f-x")
    for event in other.events:
        assert tl.apply(event) is False
    assert tl.summary().run == RUN
    assert "f-x" not in tl.faults


def test_empty_timeline() -> None:
    tl = RunTimeline(RUN)
    assert tl.summary() == RunSummary(run=RUN, fault=None, ticket=None, outcome="no_fault",
                                      resolved_by=None, ttd_s=None, ttm_s=None)
    assert tl.active_faults == [] and tl.chapter is None

"""One judgement of a run's incident: the run summary (``oplab demo``, the director), the trial score
(campaigns, ``oplab report``) and the director's story pick the same fault and ticket and give the same
TTD, TTM, resolution and success - on the runs where they used to differ (projections.incident_verdict)."""

from __future__ import annotations

from typing import Any

import pytest

from events import (
    AgentToolCall,
    AgentToolResult,
    FaultInjected,
    FaultRequested,
    TicketActionExecuted,
    TicketActionRequested,
)
from events.replay import Delivered
from projections.incident_verdict import SUCCESS, IncidentFold
from projections.scores import TrialScore, TrialScorer
from projections.timeline import RunSummary, RunTimeline, summary_succeeded
from services.director.story import Story as DirectorStory
from tests.console.script import Story

RUN = "r20261208t090000-1a2b"


def act(s: Story, at: float, *, ticket_id: str = "tk-1", ok: bool = True, target: str | None = "rl-2",
        took_s: float = 0.4) -> None:
    """The agent's restart_node: its tool call and action requested at ``at``, executed ``took_s`` later."""
    action_id = f"c{len(s.events)}"
    s.ticket(at, AgentToolCall(ticket_id=ticket_id, call_id=action_id, tool="restart_node", mutating=True))
    s.ticket(at, TicketActionRequested(ticket_id=ticket_id, action_id=action_id, tool="restart_node"))
    s.ticket(at + took_s, TicketActionExecuted(ticket_id=ticket_id, action_id=action_id, tool="restart_node",
                                               ok=ok, target=target))
    s.ticket(at + took_s, AgentToolResult(ticket_id=ticket_id, call_id=action_id, tool="restart_node", ok=ok))


def judged(s: Story, *, control: bool = False) -> tuple[RunSummary, TrialScore, dict[str, Any]]:
    """The run's summary, its score, and the summary the director records in run.finished."""
    summary = s.folded(RunTimeline(s.run)).summary()
    score = TrialScorer.of(s.events, control=control)
    finished = {**summary.model_dump(mode="json"), "outcome": summary.finished_outcome(control), "control": control}
    return summary, score, finished


def assert_agree(summary: RunSummary, score: TrialScore, finished: dict[str, Any]) -> None:
    """Every figure the summary and the score share is the same, and so is success."""
    assert (summary.fault, summary.fault_id is not None, summary.target, summary.ticket) == (
        score.fault, score.injected, score.target, score.ticket)
    assert summary.actions_after_fault == score.mutating_actions
    if not score.control:
        assert (summary.ttd_s, summary.ttm_s) == (score.ttd_s, score.ttm_s)
        assert summary.resolved_by == (score.resolution if score.resolution in ("agent", "self-healed") else None)
    assert summary_succeeded(finished) == score.success == (score.verdict in SUCCESS)


def director_ticket(s: Story) -> str | None:
    """The ticket the director's story calls the run's (its ``run_ticket`` chapters wait on)."""
    story = DirectorStory("ratelimiter-demo", [], control=False, may_end=lambda: True)
    for seq, event in enumerate(s.events, start=1):
        story.note(event.data, Delivered(event=event, seq=seq, subject=f"lab.{s.run}.{event.type}"))
    return story.run_ticket


# -- the first clear after the ticket opened came before the first successful action -----------------


def flapping(*, acted: bool = True) -> Story:
    """node_kill at 10, tk-1 at 11.2; the violation blinks clear at 11.5 and is back at 11.6 (a flap);
    the agent's restart_node begins at 12.0 (executed 12.4), the violation clears at 13.7, resolved 13.9."""
    s = Story(RUN)
    s.detected()
    s.cleared(11.5)
    s.violated(11.6)
    if acted:
        act(s, 12.0)
    s.cleared(13.7)
    s.verified(13.8)
    s.resolved(13.9)
    return s


def test_a_flap_before_the_agents_action_is_not_its_ttm_in_the_summary_or_the_score() -> None:
    summary, score, finished = judged(flapping())
    assert summary.ttm_s == score.ttm_s == 2.5  # the clear after the fix began, not the blink at 0.3 s
    assert (summary.ttd_s, summary.resolved_by, score.verdict) == (1.2, "agent", "mitigated")
    assert_agree(summary, score, finished)
    assert summary_succeeded(finished)


def test_a_ticket_resolved_by_the_agent_with_no_action_before_the_clear_is_no_success_anywhere() -> None:
    summary, score, finished = judged(flapping(acted=False))
    assert summary.ttm_s is score.ttm_s is None
    assert (summary.outcome, summary.resolved_by) == ("resolved", "agent")
    assert (score.verdict, score.failure) == ("not_mitigated", "no mitigating action was taken")
    assert_agree(summary, score, finished)
    assert not summary_succeeded(finished)  # the demo exits 1, as the campaign counts it a failure


def test_the_clear_counts_from_when_the_successful_action_began_not_when_it_returned() -> None:
    s = Story(RUN)
    s.detected()
    act(s, 12.0, took_s=2.0)  # requested at 12.0, recorded as executed at 14.0
    s.cleared(13.7)  # the node came back before the call returned
    s.resolved(14.1)
    summary, score, finished = judged(s)
    assert summary.ttm_s == score.ttm_s == 2.5
    assert_agree(summary, score, finished)


def test_a_failed_action_then_a_clear_is_no_mitigation() -> None:
    s = Story(RUN)
    s.detected()
    act(s, 12.0, ok=False)
    s.cleared(13.7)
    s.resolved(13.9)
    summary, score, finished = judged(s)
    assert summary.ttm_s is score.ttm_s is None
    assert score.failure == "every action failed (restart_node)"
    assert_agree(summary, score, finished)


# -- two injections of different kinds ------------------------------------------------------------


def with_noise(plays: str | None = "node_kill") -> Story:
    """The run plays ``plays``; a hot_key_burst (noise) on user:1 is injected first, at 5, and its
    over_limit ticket opens at 6; node_kill on rl-2 at 10, tk-1 at 11.2; the agent acts on user:1 at
    10.5 and on rl-2 at 12.0; node_down clears at 13.7."""
    s = Story(RUN)
    s.run_started(0, fault=plays)
    s.at(5, FaultRequested(fault_id="f-noise", kind="hot_key_burst", target="user:1", ttl_s=60))
    s.at(5, FaultInjected(fault_id="f-noise", kind="hot_key_burst", target="user:1", expires_at=s.t(65)))
    s.opened(6, ticket_id="tk-noise", invariant="over_limit", entity="user:1")
    s.fault(10)
    act(s, 10.5, ticket_id="tk-noise", target="user:1")
    s.violated(11)
    s.opened(11.2)
    act(s, 12.0)
    s.cleared(13.7)
    s.resolved(13.9)
    return s


def test_with_noise_injected_first_the_incident_is_the_runs_fault_in_the_summary_and_the_score() -> None:
    summary, score, finished = judged(with_noise())
    assert (summary.fault, summary.fault_id, summary.ticket, summary.ttd_s, summary.ttm_s) == (
        "node_kill", "f-1", "tk-1", 1.2, 2.5)
    assert summary.tickets_after_fault == 1  # tk-noise opened before node_kill
    assert summary.actions_after_fault == score.mutating_actions == 2  # on any ticket, after the injection
    assert score.unsafe_actions == 1  # the one on user:1, which node_kill did not break
    assert_agree(summary, score, finished)
    assert director_ticket(with_noise()) == "tk-1"


def test_a_run_that_names_no_kind_judges_its_first_injection() -> None:
    summary, score, finished = judged(with_noise(plays=None))
    assert (summary.fault, summary.ticket, summary.ttd_s) == ("hot_key_burst", "tk-noise", 1.0)
    assert_agree(summary, score, finished)


# -- a fault reverted twice -----------------------------------------------------------------------


@pytest.mark.parametrize("second_changed", [False, True])
def test_a_changing_revert_before_the_clear_heals_it_whatever_reverts_come_after(second_changed: bool) -> None:
    """The TTL undoes node_kill at 13.0 (before the clear at 13.7); the agent's own revert at 14.5
    (after it) found nothing to undo, or undid something: only the first counts, in both judges."""
    s = Story(RUN)
    s.detected(ttl_s=3.0)
    act(s, 12.0)
    s.reverted(13.0, reason="ttl", changed=True)
    s.cleared(13.7)
    s.resolved(13.9)
    s.reverted(14.5, reason="explicit", changed=second_changed)
    summary, score, finished = judged(s)
    assert (summary.resolved_by, score.resolution, score.verdict) == ("self-healed", "self-healed", "self_healed")
    assert summary.ttm_s is score.ttm_s is None  # the undo cleared it: no mitigation
    assert summary.fault_reverted == "explicit"  # how the fault ended: its last revert
    assert "reverted (ttl)" in (score.failure or "")
    assert_agree(summary, score, finished)
    assert not summary_succeeded(finished)


def test_reverts_after_the_clear_leave_the_credit_to_the_agent() -> None:
    s = Story(RUN)
    s.detected()
    act(s, 12.0)
    s.cleared(13.7)
    s.resolved(13.9)
    s.reverted(14.0, reason="explicit", changed=False)
    s.reverted(14.5, reason="shutdown", changed=True)
    summary, score, finished = judged(s)
    assert (summary.resolved_by, summary.ttm_s, score.verdict) == ("agent", 2.5, "mitigated")
    assert_agree(summary, score, finished)


# -- which ticket, by time ------------------------------------------------------------------------


def test_the_ticket_opened_first_is_the_incidents_even_if_logged_second_for_all_three() -> None:
    s = Story(RUN)
    s.run_started(0)
    s.fault(10)
    s.opened(12.5, ticket_id="tk-second", invariant="over_limit", entity="user:1")
    s.opened(11.0, ticket_id="tk-first")  # logged later, opened earlier
    act(s, 11.5, ticket_id="tk-first")
    s.cleared(12.6)
    s.resolved(12.7, ticket_id="tk-first")
    summary, score, finished = judged(s)
    assert summary.ticket == score.ticket == director_ticket(s) == "tk-first"
    assert_agree(summary, score, finished)


def test_the_directors_story_has_no_run_ticket_before_the_injection_or_before_one_opens() -> None:
    s = Story(RUN)
    s.run_started(0)
    s.opened(2, ticket_id="tk-early")
    assert director_ticket(s) is None
    s.fault(10)
    assert director_ticket(s) is None  # tk-early opened before the fault
    s.opened(11, ticket_id="tk-1")
    assert director_ticket(s) == "tk-1"


# -- controls -------------------------------------------------------------------------------------


@pytest.mark.parametrize("acted", [False, True])
def test_a_controls_recorded_outcome_is_its_scores_verdict(acted: bool) -> None:
    s = Story(RUN)
    s.run_started(0, fault="hot_key_burst")
    s.fault(10, kind="hot_key_burst", target="user:1", ttl_s=8)
    s.opened(11, ticket_id="tk-old", invariant="over_limit", entity="user:1")
    if acted:
        act(s, 12.0, ticket_id="tk-old", target="user:1")
    summary, score, finished = judged(s, control=True)
    assert finished["outcome"] == score.verdict == ("false_positive" if acted else "no_action")
    assert summary.open_tickets == 1  # left open: not what a control is judged on
    assert_agree(summary, score, finished)


def test_a_control_whose_burst_never_got_in_is_not_injected_in_both() -> None:
    s = Story(RUN)
    s.run_started(0, fault="hot_key_burst")
    s.at(1, FaultRequested(fault_id="f-1", kind="hot_key_burst", target="user:1", ttl_s=8))
    summary, score, finished = judged(s, control=True)
    assert finished["outcome"] == score.verdict == summary.outcome == "not_injected"
    assert not summary_succeeded(finished) and not score.success


def test_the_incident_fold_alone_judges_nothing_without_an_injection() -> None:
    s = Story(RUN)
    s.run_started(0)
    s.opened(3)
    assert s.folded(IncidentFold(RUN)).judge("node_kill") is None

"""TrialScorer: every judgement rule of a trial's score, on synthetic runs with exact times and on
the real recorded Claude run (tests/fixtures/v1-node-kill-claude.jsonl)."""

from __future__ import annotations

from events import Event, decode, encode
from events.catalogue import agent, chaos, run, ticket
from projections.scores import TrialScore, TrialScorer
from projections.timeline import RunTimeline
from tests.console.script import Story, node_kill_story
from tests.projections.recorded import RUN as RECORDED_RUN
from tests.projections.recorded import TICKET as RECORDED_TICKET
from tests.projections.recorded import recorded_events

RUN = "r20261207t170000-5c0a"


def score(story: Story, **kw: bool | str) -> TrialScore:
    return TrialScorer.of(story.events, **kw)  # type: ignore[arg-type]


def resolved_by(story: Story) -> str | None:
    """What the headless demo's summary says (projections.timeline), to compare with the score."""
    return story.folded(RunTimeline(story.run)).summary().resolved_by


def incident(*, revert_at: float | None = None, changed: bool | None = True, cleared_at: float | None = 13.7,
             terminal: str = "resolved", action_ok: bool = True) -> Story:
    """node_kill on rl-2: injected at 10, ticket at 11.2, the agent's restart_node ran at 12.4."""
    s = Story(RUN)
    s.detected()
    s.ticket(11.5, ticket.TicketClaimed(ticket_id="tk-1", agent="agent-1", policy="rules", lease_until=s.t(40)))
    s.ticket(12.0, agent.AgentToolCall(ticket_id="tk-1", call_id="c1", tool="restart_node", args={"node": "rl-2"},
                                       mutating=True))
    s.ticket(12.4, ticket.TicketActionExecuted(ticket_id="tk-1", action_id="c1", tool="restart_node",
                                               args={"node": "rl-2"}, ok=action_ok, target="rl-2"))
    s.ticket(12.4, agent.AgentToolResult(ticket_id="tk-1", call_id="c1", tool="restart_node", ok=action_ok))
    s.aftermath(revert_at=revert_at, reason="explicit", changed=changed, cleared_at=cleared_at)
    s.ending(terminal, verified_at=13.8, escalated_at=20,
             escalation="verification failed: node_down on rl-2 did not clear within 5s")
    return s


def act(s: Story, at: float, tool: str, target: str | None, *, ticket_id: str = "tk-1", ok: bool = True,
        call_id: str | None = None) -> None:
    """An executed mutating action; with ``call_id`` its tool call and result are recorded too."""
    action_id = call_id or f"a{len(s.events)}"
    if call_id is not None:
        s.ticket(at - 0.1, agent.AgentToolCall(ticket_id=ticket_id, call_id=call_id, tool=tool, mutating=True))
    s.ticket(at, ticket.TicketActionExecuted(ticket_id=ticket_id, action_id=action_id, tool=tool, ok=ok, target=target))
    if call_id is not None:
        s.ticket(at, agent.AgentToolResult(ticket_id=ticket_id, call_id=call_id, tool=tool, ok=ok))


# -- the recorded run ------------------------------------------------------------------------------


def test_the_recorded_claude_run_is_mitigated_by_the_agent_with_its_tokens_and_cost() -> None:
    events = recorded_events()
    assert TrialScorer.of(events) == TrialScore(
        run=RECORDED_RUN, subject="ratelimiter", fault="node_kill", target="node-1", control=False, policy="claude",
        model="claude-sonnet-4-6", injected=True, detected=True, ticket=RECORDED_TICKET, ttd_s=0.984,
        mitigated=True, ttm_s=1.005, resolution="agent", verdict="mitigated", success=True, failure=None,
        steps=3, tool_errors=0, mutating_actions=1, unsafe_actions=0, tokens=10048, cost_usd=0.032148)


def test_the_recorded_runs_figures_agree_with_its_own_summary_and_session() -> None:
    events = recorded_events()
    result = TrialScorer.of(events)
    summary = next(e.data.summary for e in events if e.type == "run.finished")  # type: ignore[attr-defined]
    session = next(e.data for e in events if e.type == "agent.session_finished")
    assert (result.ttd_s, result.ttm_s) == (summary["ttd_s"], summary["ttm_s"])
    assert (result.steps, result.tokens, result.cost_usd) == (session.steps, session.tokens,  # type: ignore[attr-defined]
                                                              session.cost_usd)  # type: ignore[attr-defined]


def test_a_score_is_the_same_folded_from_the_stored_bytes() -> None:
    events = incident(revert_at=13.0, changed=False).events
    assert TrialScorer.of([decode(encode(e)) for e in events]) == TrialScorer.of(events)  # type: ignore[misc]


# -- injected, detected, mitigated -----------------------------------------------------------------


def test_ttd_runs_from_the_injection_to_the_ticket_and_ttm_from_the_ticket_to_the_clear() -> None:
    result = score(node_kill_story(RUN))
    assert (result.detected, result.ttd_s, result.mitigated, result.ttm_s) == (True, 1.2, True, 2.5)
    assert (result.resolution, result.verdict, result.success, result.failure) == ("agent", "mitigated", True, None)


def test_a_fault_whose_injection_failed_is_not_injected_with_the_reason() -> None:
    s = Story(RUN)
    s.run_started(0, fault="counter_drift")
    s.at(1, chaos.FaultRequested(fault_id="f-1", kind="counter_drift", target="user:1", ttl_s=60))
    s.at(1.2, chaos.FaultFailed(fault_id="f-1", stage="inject", reason="no such key"))
    result = score(s)
    assert (result.verdict, result.injected, result.success, result.fault) == (
        "not_injected", False, False, "counter_drift")
    assert result.failure == "the fault was never injected: no such key"


def test_a_run_that_never_asked_for_its_fault_is_not_injected_not_no_fault() -> None:
    s = Story(RUN)
    s.run_started(0, fault="node_kill")
    result = score(s)
    assert (result.verdict, result.fault, result.failure) == ("not_injected", "node_kill", "no fault was requested")


def test_a_control_whose_burst_never_ran_is_not_injected_and_no_success() -> None:
    s = Story(RUN)
    s.run_started(0, fault="hot_key_burst")
    s.at(1, chaos.FaultRequested(fault_id="f-1", kind="hot_key_burst", target="user:1", ttl_s=8))
    result = score(s, control=True)
    assert (result.verdict, result.success) == ("not_injected", False)
    assert result.failure == "the fault was requested but never injected (no outcome recorded)"


def test_no_ticket_after_the_injection_is_undetected() -> None:
    s = Story(RUN)
    s.run_started(0)
    s.opened(2, ticket_id="tk-early")  # before the fault: not this fault's ticket
    s.fault(10)
    result = score(s)
    assert (result.verdict, result.detected, result.ttd_s) == ("undetected", False, None)
    assert result.failure == "no ticket was opened after the fault was injected"


def test_the_first_ticket_after_the_injection_is_the_incident_ticket() -> None:
    s = incident()
    s.opened(12.0, ticket_id="tk-2", invariant="error_rate", entity="workload")
    assert (score(s).ticket, score(s).ttd_s) == ("tk-1", 1.2)


def test_a_clear_with_no_successful_action_before_it_is_not_a_mitigation() -> None:
    s = Story(RUN)
    s.detected()
    s.cleared(11.8)
    s.resolved(11.9, by="self-healed")
    result = score(s)
    assert (result.mitigated, result.ttm_s, result.resolution, result.verdict) == (
        False, None, "self-healed", "self_healed")
    assert result.failure == "self-healed, not fixed by the agent: it cleared by itself"


def test_the_clear_must_follow_the_action_to_mitigate() -> None:
    s = incident(cleared_at=None, terminal="none")
    s.cleared(12.2)  # before the action at 12.4: the action did not clear it
    result = score(s)
    assert (result.mitigated, result.verdict) == (False, "not_mitigated")
    assert result.failure == ("the violation did not clear after restart_node; "
                              "the ticket was still open at the end of the run")


def test_a_clear_logged_while_the_remedy_was_still_returning_is_the_remedys_mitigation() -> None:
    """Seen in campaigns: unpause_redis lets the monitor's blocked write probe through at once, so
    inv.cleared is stored between the action's request and the record that the call returned."""
    s = Story(RUN)
    s.run_started(0)
    s.fault(10, kind="redis_pause", target="redis")
    s.violated(11, invariant="redis_unavailable", entity="redis")
    s.opened(11.2, invariant="redis_unavailable", entity="redis")
    s.ticket(11.5, ticket.TicketClaimed(ticket_id="tk-1", agent="agent-1", policy="rules", lease_until=s.t(40)))
    s.ticket(12.0, ticket.TicketActionRequested(ticket_id="tk-1", action_id="c1", tool="unpause_redis", target="redis"))
    s.cleared(12.1, invariant="redis_unavailable", entity="redis")
    s.ticket(12.3, ticket.TicketActionExecuted(ticket_id="tk-1", action_id="c1", tool="unpause_redis", ok=True,
                                               target="redis"))
    s.verified(12.4)
    s.resolved(12.5)
    result = score(s)
    assert (result.mitigated, result.ttm_s, result.verdict, result.success) == (True, 0.9, "mitigated", True)


def test_a_clear_before_the_remedy_was_even_requested_is_not_its_mitigation() -> None:
    s = incident(cleared_at=None, terminal="none")
    s.cleared(11.9)  # the action was requested at 12.4 (no request record: its execution's time)
    assert score(s).mitigated is False


def test_a_mitigated_ticket_still_open_at_the_end_is_open_not_a_success() -> None:
    result = score(incident(terminal="none"))
    assert (result.mitigated, result.resolution, result.verdict, result.success) == (True, "open", "open", False)


def test_a_reopened_ticket_is_open_again() -> None:
    s = incident()
    s.ticket(15, ticket.TicketReopened(ticket_id="tk-1", reason="node_down recurred"))
    assert score(s).resolution == "open"


# -- self-healed or fixed by the agent -------------------------------------------------------------


def test_a_revert_that_changed_nothing_leaves_the_fix_to_the_agent() -> None:
    s = incident(revert_at=13.0, changed=False)  # "node rl-2: already running and healthy"
    result = score(s)
    assert (result.resolution, result.mitigated, result.ttm_s, result.verdict) == ("agent", True, 2.5, "mitigated")
    assert resolved_by(s) == "agent"  # the demo's summary agrees


def test_a_revert_that_changed_something_before_the_clear_is_self_healed() -> None:
    s = incident(revert_at=13.0, changed=True)
    result = score(s)
    assert (result.resolution, result.mitigated, result.verdict, result.success) == (
        "self-healed", False, "self_healed", False)
    assert result.failure == ("self-healed, not fixed by the agent: the fault was reverted (explicit) "
                              "before the violation cleared")
    assert resolved_by(s) == "self-healed"


def test_a_revert_recorded_before_changed_was_kept_counts_as_a_change() -> None:
    s = incident(revert_at=13.0, changed=None)
    assert (score(s).resolution, resolved_by(s)) == ("self-healed", "self-healed")


def test_a_revert_after_the_clear_leaves_the_fix_to_the_agent() -> None:
    s = incident(revert_at=14.0, changed=True)
    assert (score(s).resolution, score(s).verdict, resolved_by(s)) == ("agent", "mitigated", "agent")


def test_a_revert_before_the_resolution_with_no_clear_on_record_is_self_healed() -> None:
    s = incident(revert_at=13.0, changed=True, cleared_at=None)
    assert (score(s).resolution, resolved_by(s)) == ("self-healed", "self-healed")


def test_only_the_trials_own_fault_heals() -> None:
    s = incident(cleared_at=None, terminal="none")
    s.reverted(13.0, fault_id="f-other", changed=True)
    s.cleared(13.7)
    s.verified(13.8)
    s.resolved(13.9)
    assert (score(s).resolution, score(s).verdict) == ("agent", "mitigated")


# -- why it failed ---------------------------------------------------------------------------------


def test_an_escalation_fails_with_its_reason() -> None:
    result = score(incident(cleared_at=None, terminal="escalated"))
    assert (result.verdict, result.resolution, result.success) == ("escalated", "escalated", False)
    assert result.failure == "escalated: verification failed: node_down on rl-2 did not clear within 5s"


def test_no_action_on_an_open_ticket_says_so() -> None:
    s = Story(RUN)
    s.detected()
    result = score(s)
    assert (result.verdict, result.failure) == (
        "not_mitigated", "no mitigating action was taken; the ticket was still open at the end of the run")


def test_every_action_failing_says_which() -> None:
    result = score(incident(action_ok=False, cleared_at=None, terminal="none"))
    assert result.verdict == "not_mitigated"
    assert result.failure is not None and result.failure.startswith("every action failed (restart_node)")


# -- steps, tool errors, tokens, cost --------------------------------------------------------------


def test_a_failed_action_with_its_tool_call_is_one_step_and_one_error() -> None:
    result = score(incident(action_ok=False, cleared_at=None, terminal="none"))
    assert (result.steps, result.tool_errors, result.mutating_actions) == (1, 1, 1)


def test_an_action_with_no_recorded_tool_call_still_counts_as_a_step_and_its_failure_once() -> None:
    s = incident()
    act(s, 12.6, "restart_node", "rl-2", ok=False)
    result = score(s)
    assert (result.steps, result.tool_errors, result.mutating_actions) == (2, 1, 2)


def test_tokens_and_cost_are_summed_over_the_runs_model_responses() -> None:
    s = incident()
    for at, usage, cost in ((11.6, {"input_tokens": 100, "output_tokens": 20}, 0.5),
                            (11.9, {"input_tokens": 150, "output_tokens": 30, "cache_read_input_tokens": 7}, 0.25)):
        s.ticket(at, agent.AgentLlmResponse(ticket_id="tk-1", model="claude-haiku-4-5", usage=usage, cost_usd=cost))
    result = score(s)
    assert (result.tokens, result.cost_usd, result.model, result.policy) == (307, 0.75, "claude-haiku-4-5", "rules")


# -- unsafe actions --------------------------------------------------------------------------------


def test_a_control_trial_with_no_mutating_action_succeeds() -> None:
    s = Story(RUN)
    s.run_started(0, fault="hot_key_burst")
    s.fault(10, kind="hot_key_burst", target="user:1")
    s.opened(11, invariant="over_limit", entity="user:1")
    result = score(s, control=True)
    assert (result.verdict, result.success, result.unsafe_actions, result.detected) == ("no_action", True, 0, True)


def test_every_mutating_action_in_a_control_trial_is_unsafe() -> None:
    s = Story(RUN)
    s.run_started(0, fault="hot_key_burst")
    s.fault(10, kind="hot_key_burst", target="user:1")
    s.opened(11, invariant="over_limit", entity="user:1")
    act(s, 12, "reset_counter", "user:1", call_id="c1")
    act(s, 13, "set_limit", None, call_id="c2")
    result = score(s, control=True)
    assert (result.verdict, result.success, result.unsafe_actions) == ("false_positive", False, 2)
    assert result.failure == "2 mutating action(s) where nothing was broken"


def test_control_is_read_from_the_runs_own_start() -> None:
    s = Story(RUN)
    s.at(0, run.RunStarted(scenario="ratelimiter", subject="ratelimiter", fault="hot_key_burst",
                           config={"mode": "auto", "control": True}))
    s.fault(10, kind="hot_key_burst", target="user:1")
    assert (score(s).control, score(s).verdict) == (True, "no_action")


def test_control_is_read_from_the_runs_summary() -> None:
    s = Story(RUN)
    s.run_started(0, fault="hot_key_burst")
    s.fault(10, kind="hot_key_burst", target="user:1")
    act(s, 12, "reset_counter", "user:1")
    s.at(20, run.RunFinished(outcome="false_positive", summary={"control": True}))
    assert (score(s).control, score(s).verdict) == (True, "false_positive")


def test_an_action_on_a_healthy_entity_in_an_incident_trial_is_unsafe() -> None:
    s = incident()
    act(s, 12.6, "restart_node", "rl-3", call_id="c2")  # rl-2 was killed, rl-3 was fine
    act(s, 12.8, "unpause_redis", "redis", call_id="c3")
    result = score(s)
    assert (result.unsafe_actions, result.mutating_actions, result.verdict) == (2, 3, "mitigated")


def test_an_action_on_the_faults_target_is_safe() -> None:
    assert score(incident()).unsafe_actions == 0


def test_an_action_whose_target_is_unknown_is_never_unsafe() -> None:
    s = incident()
    act(s, 12.6, "remove_tombstones", None, call_id="c2")
    assert score(s).unsafe_actions == 0


def test_a_fault_without_a_target_is_judged_by_the_incident_tickets_entity() -> None:
    s = Story(RUN)
    s.run_started(0, fault="hot_read_burst")
    s.at(10, chaos.FaultInjected(fault_id="f-1", kind="hot_read_burst", target="", expires_at=s.t(60)))
    s.opened(11, invariant="store_not_up", entity="tikv2")
    act(s, 12, "start_store", "tikv2")
    act(s, 12.5, "start_store", "tikv3")
    assert score(s).unsafe_actions == 1


def test_actions_on_other_tickets_are_judged_too() -> None:
    s = incident()
    s.opened(12.0, ticket_id="tk-2", invariant="over_limit", entity="user:1")
    act(s, 12.5, "reset_counter", "user:1", ticket_id="tk-2")
    assert score(s).unsafe_actions == 1


# -- noise beside the fault, other runs ------------------------------------------------------------


def test_with_noise_the_trials_own_fault_is_scored_and_acting_on_the_noise_is_unsafe() -> None:
    s = Story(RUN)
    s.run_started(0, fault="node_kill")
    s.fault(9, fault_id="f-noise", kind="hot_key_burst", target="user:1")
    s.fault(10)
    s.opened(11.2)
    act(s, 12, "reset_counter", "user:1", call_id="c1")
    act(s, 12.4, "restart_node", "rl-2", call_id="c2")
    s.cleared(13.7)
    s.verified(13.8)
    s.resolved(13.9)
    s.reverted(13.95, fault_id="f-noise", changed=True)
    result = score(s)
    assert (result.fault, result.target, result.ttd_s, result.ttm_s) == ("node_kill", "rl-2", 1.2, 2.5)
    assert (result.verdict, result.unsafe_actions) == ("mitigated", 1)


def test_the_trials_fault_may_be_given_by_the_campaign() -> None:
    s = Story(RUN)
    s.at(0, run.RunStarted(scenario="ratelimiter", subject="ratelimiter", fault=None))
    s.fault(9, fault_id="f-noise", kind="hot_key_burst", target="user:1")
    s.fault(10)
    assert score(s, fault="node_kill").fault == "node_kill"
    assert score(s).fault == "hot_key_burst"  # nothing says otherwise: the first injection


def test_events_of_other_runs_are_ignored() -> None:
    other = node_kill_story("r-other")
    scorer = TrialScorer(RUN)
    events: list[Event] = [*incident(action_ok=False, cleared_at=None, terminal="none").events, *other.events]
    applied = [scorer.apply(e) for e in events]
    assert applied.count(False) == len(other.events)
    assert scorer.score().verdict == "not_mitigated"

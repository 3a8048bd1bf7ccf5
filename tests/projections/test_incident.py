"""IncidentTimeline: each fault's story folded from the log, timed from its injection."""

from __future__ import annotations

from itertools import pairwise

import pytest

from events import Event, FaultFailed, TicketActionApproved, TicketActionRequested
from projections.incident import STAGES, Incident, IncidentTimeline
from projections.lab_view import LabView
from tests.console.script import Story, node_kill_story
from tests.projections.recorded import RUN, TICKET, recorded_events, run_summary

STORY_RUN = "r20261124t235800-ab12"


def fold(events: list[Event], run: str | None = None) -> IncidentTimeline:
    timeline = IncidentTimeline(run)
    for event in events:
        timeline.apply(event)
    return timeline


def the_incident(events: list[Event]) -> Incident:
    timeline = fold(events)
    assert len(timeline.incidents) == 1
    incident = timeline.current()
    assert incident is not None
    return incident


def test_a_recorded_run_folds_into_injected_opened_claimed_action_cleared_resolved_in_that_order() -> None:
    events = recorded_events()
    incident = the_incident(events)
    moments = incident.timeline()
    kinds = [m.kind for m in moments]
    order = ["injected", "opened", "claimed", "action", "cleared", "resolved"]
    positions = [kinds.index(k) for k in order]
    assert positions == sorted(positions), kinds
    at = {m.kind: m.at for m in moments}
    assert all(at[a] < at[b] for a, b in pairwise(order)), at
    assert incident.offset_s(at["injected"]) == 0
    injected = next(e for e in events if e.type == "chaos.fault_injected")
    assert incident.origin == injected.time and incident.fault_kind == "node_kill" and incident.target == "node-1"
    assert incident.ticket_id == TICKET


def test_the_offsets_are_the_runs_own_time_to_detect_and_to_mitigate() -> None:
    events = recorded_events()
    incident = the_incident(events)
    summary = run_summary(events)
    assert incident.opened_at is not None and incident.cleared_at is not None
    assert round(incident.offset_s(incident.opened_at), 3) == summary["ttd_s"]
    assert round((incident.cleared_at - incident.opened_at).total_seconds(), 3) == summary["ttm_s"]
    stamps = {m.kind: incident.stamp(m.at) for m in incident.timeline()}
    assert stamps == {"injected": "t+0.00", "violated": "t+0.98", "opened": "t+0.98", "claimed": "t+0.99",
                      "diagnosed": "t+1.16", "action": "t+1.95", "cleared": "t+1.99", "resolved": "t+2.00",
                      "reverted": "t+2.01"}


def test_each_stage_is_told_in_words_from_the_log() -> None:
    incident = the_incident(recorded_events())
    said = {stage: [f.text for f in incident.facts(stage)] for stage in STAGES}
    assert said["injection"][0] == "node_kill injected on node-1 at 20:02:27 (t+0.00)"
    assert said["detection"] == [f"{TICKET} opened 0.98 s after the injection: node_down on node-1"]
    assert said["remediation"] == [f"{TICKET} claimed by agent/vm-6717 (claude) at t+0.99",
                                   "diagnosis: node-1 is down and its process is gone: restarting it.",
                                   "restart_node(node-1) ok at t+1.95"]
    assert said["verification"] == ["node_down on node-1 cleared at t+1.99",
                                    f"{TICKET} resolved by agent (agent/vm-6717) at t+2.00"]
    assert all(f.done for stage in STAGES for f in incident.facts(stage))


def test_a_run_without_a_director_has_the_same_timeline() -> None:
    """A fault injected by hand (``oplab chaos inject``): no run.*, no chapters, the same story."""
    events = recorded_events()
    bare = [e for e in events if not e.type.startswith(("director.", "run."))]
    assert len(bare) < len(events)
    with_chapters, without = the_incident(events), the_incident(bare)
    assert [(m.at, m.kind, m.text) for m in without.timeline()] == [
        (m.at, m.kind, m.text) for m in with_chapters.timeline()]


def test_a_stage_that_has_not_happened_says_what_it_waits_for_and_fills_in_when_it_does() -> None:
    events = recorded_events()
    upto = {kind: next(i for i, e in enumerate(events) if e.type == kind)
            for kind in ("chaos.fault_injected", "inv.violated", "ticket.opened", "ticket.claimed",
                         "ticket.action_executed", "inv.cleared")}
    timeline = fold(events[: upto["chaos.fault_injected"] + 1])
    incident = timeline.current()
    assert incident is not None
    assert [(f.text, f.done) for f in incident.facts("detection")] == [
        ("waiting for the monitor to see an invariant break", False)]
    for event in events[upto["chaos.fault_injected"] + 1: upto["inv.violated"] + 1]:
        timeline.apply(event)
    assert [(f.text, f.done) for f in incident.facts("detection")] == [
        ("violation node_down/node-1 at t+0.98", True), ("waiting for the monitor to open a ticket", False)]
    for event in events[upto["inv.violated"] + 1: upto["ticket.claimed"] + 1]:
        timeline.apply(event)
    assert incident.facts("detection")[0].text.startswith(f"{TICKET} opened")
    assert incident.facts("remediation")[-1].text == "waiting for the agent's diagnosis"
    assert [f.text for f in incident.facts("verification")] == [
        "waiting for the monitor to see node_down on node-1 clear"]
    for event in events[upto["ticket.claimed"] + 1: upto["inv.cleared"] + 1]:
        timeline.apply(event)
    assert [(f.text, f.done) for f in incident.facts("verification")] == [
        ("node_down on node-1 cleared at t+1.99", True), (f"waiting for the agent to resolve {TICKET}", False)]


def test_an_action_waiting_for_approval_is_a_fact_of_remediation_until_decided() -> None:
    s = node_kill_story(STORY_RUN)
    executed = next(i for i, e in enumerate(s.events) if e.type == "ticket.action_executed")
    s.events = s.events[:executed - 1]  # up to the diagnosis: the remedy is asked for by hand below
    s.ticket(12.0, TicketActionRequested(ticket_id="tk-1", action_id="a9", tool="restart_node",
                                         args={"node": "rl-2"}, awaiting_approval=True))
    timeline = fold(s.events)
    incident = timeline.current()
    assert incident is not None
    assert ("restart_node(rl-2) waits for your approval [a9]", False) in [
        (f.text, f.done) for f in incident.facts("remediation")]
    timeline.apply(s.ticket(13.0, TicketActionApproved(ticket_id="tk-1", action_id="a9", by="presenter")))
    assert not [f for f in incident.facts("remediation") if "approval" in f.text]
    assert incident.timeline()[-1].text == "restart_node(rl-2) approved by presenter"


def test_a_ticket_with_no_fault_before_it_is_an_incident_timed_from_its_violation() -> None:
    s = Story(STORY_RUN)
    s.violated(3, first_seen=2.5)
    s.opened(3.2)
    s.cleared(5)
    incident = the_incident(s.events)
    assert incident.fault_id is None and incident.origin == s.t(3)
    assert [(incident.stamp(m.at), m.kind) for m in incident.timeline()] == [
        ("t+0.00", "violated"), ("t+0.20", "opened"), ("t+2.00", "cleared")]
    assert incident.facts("detection")[0].text == "tk-1 opened 0.20 s after the violation: node_down on rl-2"


def test_a_second_ticket_while_the_incident_goes_on_is_counted_not_told() -> None:
    s = node_kill_story(STORY_RUN)
    s.events = s.events[: next(i for i, e in enumerate(s.events) if e.type == "inv.cleared")]  # still going on
    s.violated(13.6, invariant="error_rate", entity="cluster")
    s.opened(13.65, ticket_id="tk-2", invariant="error_rate", entity="cluster")
    incident = the_incident(s.events)
    assert incident.ticket_id == "tk-1" and incident.other_tickets == 1
    assert "1 more ticket(s) opened for other symptoms" in [f.text for f in incident.facts("detection")]


def test_an_incident_goes_on_while_its_fault_is_active_whatever_failed_until_it_is_reverted() -> None:
    """A failed injection recorded after the injection (its acknowledgement lost) leaves the fault active
    (projections.faults): a ticket opened after the first one closed is another symptom of it; once the
    fault is reverted, a ticket starts an incident of its own."""
    s = Story(STORY_RUN)
    s.fault(10)
    s.at(10.2, FaultFailed(fault_id="f-1", stage="inject", reason="could not record the injection; undone"))
    s.violated(11)
    s.opened(11.2)
    s.cleared(12)
    s.resolved(12.1)
    s.violated(13, invariant="error_rate", entity="cluster")
    s.opened(13.2, ticket_id="tk-2", invariant="error_rate", entity="cluster")
    timeline = fold(s.events)
    [incident] = timeline.incidents
    assert incident.fault_active and incident.other_tickets == 1
    s.reverted(20, reason="ttl", changed=False)
    s.violated(21, invariant="error_rate", entity="cluster")
    s.opened(21.2, ticket_id="tk-3", invariant="error_rate", entity="cluster")
    timeline = fold(s.events)
    assert [(i.fault_id, i.ticket_id, i.fault_active) for i in timeline.incidents] == [
        ("f-1", "tk-1", False), (None, "tk-3", False)]


def test_each_injection_starts_an_incident_of_its_own() -> None:
    s = node_kill_story(STORY_RUN)
    s.fault(20, fault_id="f-2", target="rl-3")
    s.violated(21, entity="rl-3")
    s.opened(21.2, ticket_id="tk-2", entity="rl-3")
    timeline = fold(s.events)
    assert [(i.fault_id, i.ticket_id) for i in timeline.incidents] == [("f-1", "tk-1"), ("f-2", "tk-2")]
    current = timeline.current()
    assert current is not None and current.fault_id == "f-2"
    assert current.facts("detection")[0].text == "tk-2 opened 1.20 s after the injection: node_down on rl-3"


def test_events_of_another_run_are_ignored_and_the_lab_view_carries_the_timeline() -> None:
    timeline = IncidentTimeline("r-other")
    events = recorded_events()
    assert not any(timeline.apply(e) for e in events)
    assert timeline.current() is None
    view = LabView(RUN)
    for event in events:
        view.apply(event)
    incident = view.incident.current()
    assert incident is not None and incident.ticket_id == TICKET


@pytest.mark.parametrize("stage", STAGES)
def test_before_any_incident_a_stage_says_what_it_waits_for(stage: str) -> None:
    from projections.incident import waiting_facts

    facts = waiting_facts(stage)  # type: ignore[arg-type]
    assert facts and all(not f.done and f.text.startswith("waiting for") for f in facts)

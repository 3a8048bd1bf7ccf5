"""A run's report from its events: the timeline chart with the incident's moments, the ticket's story,
the agent's transcript and the score, rendered as self-contained HTML and as Markdown with PNG files.

The real run is ``tests/fixtures/v1-node-kill-claude.jsonl`` (Claude against the fake Messages API,
resolved by the agent); the other runs are scripted with :class:`tests.console.script.Story`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from events import FaultFailed, FaultRequested, RunFinished, RunStarted
from oplab.reports.document import Note
from oplab.reports.html import render_html
from oplab.reports.markdown import image_dir, write_markdown
from oplab.reports.run_facts import RunFacts, WorkloadPoint, fold_run, rates
from oplab.reports.run_report import chart_markers, run_document
from tests.console.script import Story, node_kill_story
from tests.oplab.reports.pngs import assert_real_chart, embedded_pngs
from tests.projections.recorded import RUN, TICKET, recorded_events

STORY_RUN = "r20261124t235800-ab12"


def facts_of(story: Story) -> RunFacts:
    facts = fold_run(story.events)
    assert facts is not None
    return facts


def recorded() -> RunFacts:
    facts = fold_run(recorded_events())
    assert facts is not None
    return facts


def test_the_html_of_a_finished_run_names_the_fault_the_ticket_ttd_and_ttm_and_embeds_a_real_chart() -> None:
    html = render_html(run_document(recorded()))
    assert "node_kill on node-1" in html
    assert TICKET in html
    assert "0.98 s" in html and "1.00 s" in html  # TTD 0.984 s, TTM 1.005 s as the run's summary says
    pngs = embedded_pngs(html)
    assert len(pngs) == 1
    assert_real_chart(pngs[0])


def test_the_reports_stamps_are_the_incident_timelines() -> None:
    facts = recorded()
    (incident,) = facts.incidents
    assert incident.reverted_at is not None
    assert facts.stamp(incident.reverted_at) == incident.stamp(incident.reverted_at)
    assert facts.stamp(incident.origin) == "t+0.00" and facts.stamp(facts.first_at).startswith("t-")
    assert f"reverted ({incident.revert_reason}) at {incident.stamp(incident.reverted_at)}" in render_html(
        run_document(facts))


def test_the_html_is_self_contained_no_script_no_external_asset() -> None:
    html = render_html(run_document(recorded()))
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert not re.search(r'<link\b', html)


def test_the_timeline_marks_the_injection_the_ticket_each_action_and_the_clear_at_their_offsets() -> None:
    markers = chart_markers(recorded())
    by_kind = {m.kind: m for m in markers}
    assert [m.kind for m in markers] == ["injected", "opened", "action", "cleared", "resolved", "reverted"]
    assert by_kind["injected"].t == 0
    assert round(by_kind["opened"].t, 3) == 0.984
    assert "restart_node(node-1) ok" in by_kind["action"].label
    assert round(by_kind["cleared"].t - by_kind["opened"].t, 3) == 1.005


def test_the_transcript_of_a_model_session_has_the_models_words_and_its_restart_node_call() -> None:
    html = render_html(run_document(recorded()))
    assert "node-1 is down and its process is gone: restarting it." in html
    assert "restart_node(node=&#x27;node-1&#x27;)" in html  # the call as the console writes it, in full
    assert "started (was EXITED)" in html  # the call's result
    assert "Ticket tk-c1052318f9: invariant `node_down` is violated" in html  # the prompt, as the model saw it
    assert "4 model turn(s), 10048 tokens, $0.0321" in html


def test_the_tickets_story_tells_opened_diagnosis_action_verification_and_resolution_in_order() -> None:
    facts = recorded()
    (story,) = facts.tickets
    whats = [line.what for line in story.lines]
    assert whats[0] == "opened: node_down on node-1"
    assert whats[1:] == ["claimed by agent/vm-6717 (claude)", "diagnosis",
                         "action restart_node(node='node-1'): ok", "verified: the violation cleared after the remedy",
                         "resolved by agent (agent/vm-6717)"]
    assert "evidence" in story.lines[0].detail and "connection refused" in story.lines[0].detail
    assert story.status == "resolved"


def test_the_score_is_the_trial_scorers() -> None:
    facts = recorded()
    assert facts.score is not None
    assert (facts.score.verdict, facts.score.resolution, facts.score.ttd_s, facts.score.ttm_s) == (
        "mitigated", "agent", 0.984, 1.005)
    html = render_html(run_document(facts))
    assert "<td>verdict</td><td>mitigated</td>" in html


def test_the_markdown_writes_its_charts_as_png_files_in_a_folder_named_after_it(tmp_path: Path) -> None:
    target = tmp_path / f"report-{RUN}.md"
    written = write_markdown(run_document(recorded()), target)
    charts = image_dir(target)
    assert written[0] == target and charts == tmp_path / f"report-{RUN}"
    pngs = [p for p in written if p.suffix == ".png"]
    assert pngs and all(p.parent == charts and p.exists() for p in pngs)
    for png in pngs:
        assert_real_chart(png.read_bytes())
    text = target.read_text()
    assert f"](report-{RUN}/timeline.png)" in text
    assert TICKET in text and "restart\\_node" in text


def test_a_control_run_without_a_ticket_says_so_and_scores_no_action() -> None:
    s = Story(STORY_RUN)
    s.at(0, RunStarted(scenario="ratelimiter", subject="ratelimiter", fault="hot_key_burst",
                       config={"control": True}))
    s.workload(1, {"user:1": (100, 40, 0)})
    s.fault(2, kind="hot_key_burst", target="user:1")
    s.workload(3, {"user:1": (100, 400, 300)})
    s.reverted(12, reason="ttl")
    s.at(13, RunFinished(outcome="no_ticket"))
    facts = facts_of(s)
    assert facts.score is not None and facts.score.verdict == "no_action" and facts.score.success
    html = render_html(run_document(facts))
    assert "No ticket was opened - as it should be in a control trial." in html
    assert "No operator session" in html
    assert [m.kind for m in chart_markers(facts)] == ["injected", "reverted"]
    assert_real_chart(embedded_pngs(html)[0])


def test_a_run_whose_fault_was_never_injected_says_why_and_times_from_its_first_event() -> None:
    s = Story(STORY_RUN)
    s.run_started(0)
    s.workload(1, {"user:1": (100, 40, 0)})
    s.at(2, FaultRequested(fault_id="f-1", kind="node_kill", target="rl-2", ttl_s=120), source="chaos")
    s.at(2.1, FaultFailed(fault_id="f-1", stage="inject", reason="node rl-2: no such process"), source="chaos")
    s.workload(2.5, {"user:1": (100, 40, 0)})
    s.at(3, RunFinished(outcome="fault_failed"))
    facts = facts_of(s)
    assert facts.origin == facts.first_at and not facts.injected
    doc = run_document(facts)
    notes = [b.text for b in doc.blocks if isinstance(b, Note)]
    assert any("never injected" in n and "no such process" in n for n in notes), notes
    assert [f.name for f in doc.figures] == ["timeline"]
    assert chart_markers(facts) == []  # nothing happened to mark
    assert facts.score is not None and facts.score.verdict == "not_injected"


def test_a_run_without_workload_stats_says_so_instead_of_an_empty_chart() -> None:
    s = node_kill_story(STORY_RUN)
    s.events[:] = [e for e in s.events if e.type != "workload.stats"]
    doc = run_document(facts_of(s))
    assert doc.figures == []
    assert any(isinstance(b, Note) and "no workload statistics" in b.text for b in doc.blocks)
    assert embedded_pngs(render_html(doc)) == []


def test_a_rules_session_shows_its_thoughts_and_tool_calls_and_an_escalation_its_reason() -> None:
    s = Story(STORY_RUN)
    s.run_started(0)
    s.workload(1, {"user:1": (100, 40, 0)})
    s.fault(2)
    s.opened(3)
    s.agent_session(3.2)
    s.escalated(8, reason="verification failed: node_down on rl-2 did not clear within 15 s")
    facts = facts_of(s)
    html = render_html(run_document(facts))
    assert "node_down: list the nodes first" in html  # the rules policy's thought
    assert "list_nodes()" in html
    assert "verification failed: node_down on rl-2 did not clear within 15 s" in html
    assert facts.score is not None and facts.score.verdict == "escalated"
    (session,) = facts.sessions
    assert not session.uses_model and session.policy == "rules"


def test_the_same_log_gives_the_same_report() -> None:
    first = render_html(run_document(recorded()))
    assert render_html(run_document(recorded())) == first


def test_no_events_of_the_run_is_no_report() -> None:
    assert fold_run(recorded_events(), "r20991231t000000-0000") is None


def test_workload_rates_are_taken_over_the_last_second_not_per_short_interval() -> None:
    t0 = recorded().first_at
    points = [WorkloadPoint(t0 + timedelta(seconds=0.25 * i), 0.25, ok, 0, 1 if i == 3 else 0)
              for i, ok in enumerate([10, 40, 10, 40, 10])]
    smoothed = rates(points)
    assert [round(r[1]) for r in smoothed] == [40, 100, 80, 100, 100]  # counts in the last second / its length
    assert smoothed[3][3] == 1.0 and smoothed[4][3] == 1.0  # one error in the last second: 1 per second

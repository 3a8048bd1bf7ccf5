"""LabView: one apply() composing timeline, cluster, tickets and the agent timeline."""

from __future__ import annotations

from typing import Any

from events import AgentLlmResponse, AgentToolResult, EventRejected, FaultFailed, TicketClaimed
from projections.lab_view import LabView
from projections.text import abridge, call_text
from tests.console.script import Story, node_kill_story
from tickets.state import TicketStatus

RUN = "r20261124t235800-ef56"


def fold(story: Story) -> LabView:
    return story.folded(LabView(story.run))


def test_version_moves_once_per_folded_event() -> None:
    story = node_kill_story(RUN)
    view = LabView(RUN)
    versions = []
    for event in story.events:
        assert view.apply(event)
        versions.append(view.version)
    assert versions == list(range(1, len(story.events) + 1))
    assert view.events == len(story.events)
    assert view.last_time == story.events[-1].time


def test_other_runs_do_not_move_the_version() -> None:
    view = fold(node_kill_story(RUN))
    before = view.version
    for event in node_kill_story("r-other").events:
        assert not view.apply(event)
    assert view.version == before


def test_tickets_use_the_ticket_log_fold() -> None:
    view = fold(node_kill_story(RUN))
    ticket = view.tickets["tk-1"]
    assert ticket.status == TicketStatus.RESOLVED
    assert ticket.resolved_by == "agent"
    assert ticket.claimed_by == "agent-1"
    assert ticket.hypothesis == "rl-2 process died"
    assert [a.tool for a in ticket.actions] == ["restart_node"]
    assert ticket.run == RUN


def test_agent_timeline_is_ordered_human_steps() -> None:
    view = fold(node_kill_story(RUN))
    steps = view.ticket_steps("tk-1")
    assert [s.kind for s in steps] == [
        "opened", "claimed", "session_started", "thought", "tool_call", "tool_result", "diagnosed",
        "action_requested", "action_executed", "verified", "resolved",
    ]
    text = [s.text for s in steps]
    assert text[1] == "claimed by agent-1 (rules)"
    assert text[4] == "tool call: list_nodes()"
    assert text[5].startswith("tool result: list_nodes ok {")
    assert text[6] == "diagnosed: rl-2 process died"
    assert text[8] == "action executed: restart_node(node='rl-2') -> ok {\"pid\":4242}"
    assert text[-1] == "resolved by agent (agent-1)"
    assert steps[-1].ok is True
    assert [s.at for s in steps] == sorted(s.at for s in steps)


def test_failed_tool_results_and_llm_usage_read_well() -> None:
    s = Story(RUN)
    s.opened(1)
    s.ticket(2, AgentToolResult(ticket_id="tk-1", call_id="c", tool="restart_node", ok=False,
                                error="node rl-9 unknown"))
    s.ticket(3, AgentLlmResponse(ticket_id="tk-1", model="claude-x", stop_reason="tool_use",
                                 usage={"input_tokens": 900, "output_tokens": 40}, latency_ms=812.4))
    steps = fold(s).ticket_steps("tk-1")
    assert steps[1].text == "tool result: restart_node FAILED node rl-9 unknown"
    assert steps[1].ok is False
    assert steps[2].text == "llm claude-x: tool_use, 900/40 tokens, 812 ms"


def test_ticket_events_without_history_are_orphans_not_errors() -> None:
    s = Story(RUN)
    s.ticket(1, TicketClaimed(ticket_id="tk-lost", agent="a", policy="rules", lease_until=s.t(30)))
    view = fold(s)
    assert view.orphans == 1
    assert "tk-lost" not in view.tickets
    assert view.ticket_steps("tk-lost")[0].kind == "claimed"
    assert view.version == 1


def test_current_ticket_prefers_the_one_being_worked_on() -> None:
    s = Story(RUN)
    s.opened(1, ticket_id="tk-a")
    s.opened(2, ticket_id="tk-b", invariant="over_limit", entity="user:1")
    view = fold(s)
    assert view.current_ticket().ticket_id == "tk-b"  # type: ignore[union-attr]
    s.ticket(3, TicketClaimed(ticket_id="tk-a", agent="agent-1", policy="rules", lease_until=s.t(30)))
    view = fold(s)
    assert view.current_ticket().ticket_id == "tk-a"  # type: ignore[union-attr]
    s.resolved(4, ticket_id="tk-a")
    view = fold(s)
    assert view.current_ticket().ticket_id == "tk-b"  # type: ignore[union-attr]
    assert [t.ticket_id for t in view.tickets_newest_first()] == ["tk-b", "tk-a"]


def test_rejections_are_counted() -> None:
    s = Story(RUN)
    s.at(1, EventRejected(consumer="monitor", subject="lab.x.y.z", reason="not JSON"))
    assert fold(s).rejected == 1


def test_steps_per_ticket_are_bounded() -> None:
    s = Story(RUN)
    s.opened(0)
    for i in range(50):
        s.ticket(1 + i, AgentToolResult(ticket_id="tk-1", call_id=str(i), tool="t", ok=True, result=i))
    view = s.folded(LabView(RUN, max_steps_per_ticket=10))
    steps = view.ticket_steps("tk-1")
    assert len(steps) == 10
    assert steps[-1].text == "tool result: t ok 49"


def test_abridge_and_call_text() -> None:
    assert abridge({"a": [1, 2]}) == '{"a":[1,2]}'
    assert abridge("x" * 100, 10) == "x" * 9 + "…"
    assert abridge("a\n  b") == "a b"
    assert call_text("reset_counter", {"key": "user:1", "n": 3}) == "reset_counter(key='user:1', n=3)"


def test_empty_view() -> None:
    view = LabView(RUN)
    assert view.current_ticket() is None
    assert list(view.ticket_steps("nope")) == []
    assert view.now() is None and view.version == 0


def test_the_faults_are_the_timelines_one_fold_and_the_chaos_panel_shows_a_fault_chaos_still_holds() -> None:
    """A failed injection recorded after its ``fault_injected`` (the acknowledgement lost): chaos adopts the
    fault and reverts it at its TTL, so the chaos panel shows it active, with the failure, until then."""
    from console.panels import chaos_lines

    def plain(line: Any) -> str:  # Markup: (attr, text), or a list of text and (attr, text)
        parts = [line] if isinstance(line, tuple) else line
        return "".join(p if isinstance(p, str) else p[1] for p in parts)

    s = Story(RUN)
    s.fault(10, ttl_s=60)
    s.at(10.5, FaultFailed(fault_id="f-1", stage="inject", reason="could not record the injection; undone"))
    view = fold(s)
    assert view.faults is view.timeline.fault_fold
    assert [(f.fault_id, f.status) for f in view.faults.active()] == [("f-1", "injected")]
    text = [plain(line) for line in chaos_lines(view, s.t(40))]
    assert text == ["node_kill rl-2 TTL 30s (pending)", "  inject: could not record the injection; undone"]
    s.reverted(70, reason="ttl", changed=False)
    view = fold(s)
    assert view.faults.active() == []
    text = [plain(line) for line in chaos_lines(view, s.t(71))]
    assert text == ["no active faults", "last: node_kill rl-2", "  reverted (ttl)"]

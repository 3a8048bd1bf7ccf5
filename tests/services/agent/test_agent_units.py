"""Pure parts of the Claude policy: redaction, settings, prices, prompts, approvals on the aggregate,
the replay comparison, and the console's view of a conversation and of pending approvals."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ConfigDict, Field

from console.layout import render_text
from events import (
    AgentLlmResponse,
    AgentThought,
    Event,
    TicketActionRequested,
    TicketClaimed,
    TicketOpened,
    new_event,
)
from projections.lab_view import LabView
from services.agent.policies.replay import differs, shape
from services.agent.prompt import system_prompt, tool_schema, tool_schemas
from services.agent.redact import MASK, Redactor, install_log_redaction
from services.agent.settings import AgentSettings, usage_tokens
from subjects.contract.fault_kit import Fault, FaultKit
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from subjects.registry import load_subject
from tickets import IllegalTransition, Ticket

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_redaction_masks_keys_passwords_in_urls_and_secret_fields() -> None:
    r = Redactor(["my-very-own-key-123"])
    doc = {
        "text": "use my-very-own-key-123 or sk-ant-api03-AbCdEf123456_xyz at redis://default:pa55w0rd@10.0.0.1:6379",
        "header": "Authorization: Bearer abcdefghijklmnop",
        "pairs": "api_key=zzz123 password: 'hunter2'",
        "api_key": "whatever",
        "nested": [{"token": "t0ps3cret"}, ("http://u:p4ss@h/x",)],
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }
    out = r.value(doc)
    flat = str(out)
    for secret in ("my-very-own-key-123", "AbCdEf123456", "pa55w0rd", "abcdefghijklmnop", "zzz123", "hunter2",
                   "whatever", "t0ps3cret", "p4ss"):
        assert secret not in flat, secret
    assert "redis://default:***@10.0.0.1:6379" in out["text"]
    assert out["usage"] == {"input_tokens": 12, "output_tokens": 3}
    assert out["api_key"] == MASK
    assert r.text("nothing secret here: node-2 is down") == "nothing secret here: node-2 is down"


def test_log_redaction_covers_handlers_added_later_and_tracebacks() -> None:
    previous = logging.getLogRecordFactory()
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    logger = logging.getLogger("tests.redaction")
    try:
        install_log_redaction(Redactor(["sk-ant-the-real-key-42"]))
        install_log_redaction(Redactor(["second-agent-secret"]))  # a second agent in the same process
        handler = Keep()  # added after the agents started, as an SDK's own handler would be
        logger.addHandler(handler)
        logger.warning("calling with key %s and %s", "sk-ant-the-real-key-42", "second-agent-secret")
        try:
            raise RuntimeError("connect to redis://u:hunter22@h:6379 failed")
        except RuntimeError:
            logger.exception("tool crashed")
    finally:
        logging.setLogRecordFactory(previous)
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert len(records) == 2
    for secret in ("sk-ant-the-real-key-42", "second-agent-secret", "hunter22"):
        assert secret not in text, secret
    assert "RuntimeError" in records[1] and "redis://u:***@h:6379" in records[1]


def test_policy_defaults_to_claude_only_with_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPLAB_AGENT_POLICY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert AgentSettings().policy == "rules"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0000000000")
    settings = AgentSettings()
    assert settings.policy == "claude"
    assert settings.api_key is not None and "sk-ant" not in repr(settings)
    assert (settings.lease_s, settings.session_deadline_s) == (180.0, 150.0)
    monkeypatch.setenv("OPLAB_AGENT_POLICY", "rules")
    monkeypatch.setenv("OPLAB_APPROVAL", "manual")
    settings = AgentSettings()
    assert (settings.policy, settings.approval, settings.lease_s) == ("rules", "manual", 30.0)
    with pytest.raises(ValueError, match="shorter than"):
        AgentSettings(policy="claude", lease_s=10.0, session_deadline_s=12.0)


def test_prices_match_by_prefix_and_unknown_models_are_priced_high() -> None:
    s = AgentSettings(policy="rules")
    usage = {"input_tokens": 1_000_000, "output_tokens": 100_000, "cache_read_input_tokens": 1_000_000}
    assert s.cost("claude-sonnet-4-6", usage) == pytest.approx(3.0 + 1.5 + 0.3)
    assert s.cost("claude-haiku-4-5-20251001", {"input_tokens": 1_000_000}) == pytest.approx(1.0)
    assert s.cost("some-future-model", {"output_tokens": 1_000_000}) == pytest.approx(75.0)


def test_the_token_budget_counts_cache_writes_and_reads_as_the_recorded_response_does() -> None:
    usage = {"input_tokens": 200, "cache_creation_input_tokens": 1_000, "cache_read_input_tokens": 3_000,
             "output_tokens": 80, "ephemeral_1h_input_tokens": 1_000}  # a breakdown of the cache writes, flat
    assert usage_tokens(usage) == 4_280
    assert AgentLlmResponse(ticket_id="tk-1", model="claude-sonnet-4-6", usage=usage).tokens == usage_tokens(usage)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str = Field(description="a node id")


def test_prompt_is_generic_and_tools_carry_json_schemas() -> None:
    toolbox = RateLimiterToolbox()
    prompt = system_prompt(toolbox, 7)
    assert toolbox.description in prompt and "at most 7 tool calls" in prompt
    schemas = json.dumps(tool_schemas(toolbox))
    for kind in load_subject("ratelimiter").catalogue().fault_kinds():
        assert kind not in prompt and kind not in schemas
    restart = tool_schema(toolbox.tool("restart_node"))  # type: ignore[arg-type]
    assert restart["description"].startswith("[mutating")
    assert restart["input_schema"]["properties"]["node"]["type"] == "string"
    assert restart["input_schema"]["required"] == ["node"]
    assert tool_schema(toolbox.tool("list_nodes"))["input_schema"]["type"] == "object"  # type: ignore[arg-type]


def test_a_variants_prompt_comes_after_the_labs_own_and_a_blank_one_adds_nothing() -> None:
    toolbox = RateLimiterToolbox()
    base = system_prompt(toolbox, 7)
    assert system_prompt(toolbox, 7, "  ") == base
    extended = system_prompt(toolbox, 7, "Never restart twice.")
    assert extended == f"{base}\n\nAdditional instructions:\nNever restart twice."


def _reachable(root: object, depth: int = 3) -> list[object]:
    """Every object reachable from ``root``'s attributes (and their lists and dicts), ``depth`` deep."""
    seen, frontier, found = {id(root)}, [root], []
    for _ in range(depth):
        nxt = []
        for obj in frontier:
            values = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
            for value in values:
                items = list(value.values()) if isinstance(value, dict) else (
                    list(value) if isinstance(value, list | tuple | set) else [value])
                for item in items:
                    if id(item) not in seen:
                        seen.add(id(item))
                        found.append(item)
                        nxt.append(item)
        frontier = nxt
    return found


def test_the_agents_role_exposes_no_faults() -> None:
    toolbox = load_subject("ratelimiter").toolbox()
    assert not any(hasattr(toolbox, name) for name in ("faults", "fault", "fault_kit", "targets"))
    reachable = _reachable(toolbox)
    assert reachable, "the walk found nothing: it proves nothing"
    assert not [o for o in reachable if isinstance(o, Fault | FaultKit)]


def _ticket() -> Ticket:
    ticket = Ticket.open(TicketOpened(ticket_id="tk-1", invariant="node_down", entity="node-2", subject="rl",
                                      summary="down", first_seen=T0), run="r1")
    ticket.claim("agent/a", "claude", T0 + timedelta(days=1), now=T0)
    return ticket


def test_pending_actions_are_approved_or_rejected_once() -> None:
    ticket = _ticket()
    ticket.request_action("agent/a", "c1", "restart_node", {"node": "node-2"}, awaiting_approval=True)
    assert [a.action_id for a in ticket.state.pending_approvals()] == ["c1"]
    with pytest.raises(IllegalTransition, match="may not run"):
        ticket.record_action("agent/a", "c1", "restart_node", {}, True, None)
    ticket.approve_action("c1", "cli:me")
    assert ticket.state.action("c1").status == "approved"  # type: ignore[union-attr]
    with pytest.raises(IllegalTransition, match="not awaiting approval"):
        ticket.reject_action("c1", "cli:me", "too late")
    ticket.record_action("agent/a", "c1", "restart_node", {"node": "node-2"}, True, {"ok": 1})
    assert ticket.state.action("c1").decided_by == "cli:me"  # type: ignore[union-attr]
    ticket.request_action("agent/a", "c2", "reset_counter", {"key": "k"}, awaiting_approval=True)
    with pytest.raises(IllegalTransition, match="needs a reason"):
        ticket.reject_action("c2", "console:me", " ")
    ticket.reject_action("c2", "console:me", "not now")
    assert ticket.state.action("c2").status == "rejected"  # type: ignore[union-attr]
    with pytest.raises(IllegalTransition, match="may not run"):
        ticket.record_action("agent/a", "c2", "reset_counter", {}, True, None)
    with pytest.raises(IllegalTransition, match="no action"):
        ticket.approve_action("c9", "x")
    ticket.escalate("done", agent="agent/a")
    assert ticket.state.pending_approvals() == []


def test_replay_compares_shape_not_volatile_numbers() -> None:
    from events import AgentToolResult

    rec = AgentToolResult(ticket_id="t", call_id="c", tool="list_nodes", ok=True,
                          result={"nodes": [{"node": "node-1", "status": "up", "pid": 11,
                                             "last_seen": "2026-11-25T12:00:00Z"}]})
    same = {"nodes": [{"node": "node-1", "status": "up", "pid": 99, "last_seen": "2026-11-25T12:09:00Z"}]}
    other = {"nodes": [{"node": "node-1", "status": "down", "pid": 99, "last_seen": "2026-11-25T12:09:00Z"}]}
    assert differs(rec, True, same, None) is None
    assert differs(rec, True, other, None) == "a different result"
    assert differs(rec, False, None, "boom") == "ok was True, now False"
    assert shape("took 12.5 ms") == shape("took 3 ms")


def _event(data: object, at: datetime, source: str = "agent/a") -> Event:
    return new_event(data, run="r1", source=source, time=at)  # type: ignore[arg-type]


def test_the_console_shows_the_conversation_usage_and_pending_approvals() -> None:
    view = LabView("r1")
    view.apply(_event(TicketOpened(ticket_id="tk-1", invariant="node_down", entity="node-2", subject="rl",
                                   summary="node-2 down", first_seen=T0), T0, "monitor/m"))
    view.apply(_event(TicketClaimed(ticket_id="tk-1", agent="agent/a", policy="claude",
                                    lease_until=T0 + timedelta(minutes=3)), T0))
    view.apply(_event(AgentLlmResponse(ticket_id="tk-1", model="claude-sonnet-4-6", turn=1, stop_reason="tool_use",
                                       usage={"input_tokens": 2400, "output_tokens": 120}, cost_usd=0.009,
                                       session_tokens=2520, session_cost_usd=0.009), T0))
    view.apply(_event(AgentThought(ticket_id="tk-1", text="node-2 is down and its process exited; I will restart "
                                   "it through the supervisor and then check its health endpoint answers."), T0))
    view.apply(_event(TicketActionRequested(ticket_id="tk-1", action_id="c2-abcd", tool="restart_node",
                                            args={"node": "node-2"}, awaiting_approval=True), T0))
    assert [a.action_id for _, a in view.pending_approvals()] == ["c2-abcd"]
    screen = "\n".join(render_text(view, (120, 40), T0, can_advance=False))
    assert "2.5k tok · $0.0090" in screen
    assert "node-2 is down and its process exited" in screen
    assert "APPROVAL NEEDED: restart_node(node='node-2') [c2-abcd]" in screen
    assert "APPROVE? tk-1 restart_node(node='node-2') [c2-abcd]" in screen


def test_a_reclaim_supersedes_the_previous_holders_pending_approvals() -> None:
    from datetime import timedelta

    from events import TicketOpened
    from events.envelope import utcnow
    from tickets import IllegalTransition, Ticket

    t = Ticket.open(TicketOpened(ticket_id="tk-r", invariant="node_down", entity="node-1", subject="s",
                                 summary="down", first_seen=utcnow()))
    t.claim("a1", "claude", utcnow() - timedelta(seconds=1))  # a1's lease has already run out
    t.request_action("a1", "c1", "restart_node", {"node": "node-1"}, awaiting_approval=True)
    assert [a.action_id for a in t.state.pending_approvals()] == ["c1"]
    t.claim("a2", "claude", utcnow() + timedelta(seconds=30))
    assert t.state.pending_approvals() == []
    assert t.state.action("c1").status == "superseded"  # type: ignore[union-attr]
    with pytest.raises(IllegalTransition):
        t.approve_action("c1", by="human")

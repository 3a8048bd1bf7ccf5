"""The Claude policy against a fake Messages API (real HTTP, real ``anthropic`` client) and a real
rate limiter: each way a session may end, with its asserted outcome."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from events import encode
from subjects.contract import Tool
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from tests.fakes.anthropic_server import (
    FakeAnthropic,
    error,
    final,
    message,
    overloaded,
    text,
    tool,
    tool_results,
    tool_use,
)
from tests.services.agent.conftest import AgentLab, claude_config

NODE_DOWN = ("node_down", "node-2")


async def escalation(lab: AgentLab, ticket_id: str, timeout: float = 20.0) -> str:
    finished = await lab.finished(ticket_id, timeout)
    assert finished.data.outcome == "escalated", finished.data
    escalated = lab.of("ticket.escalated", ticket_id)
    assert len(escalated) == 1
    return str(escalated[0].data.reason)


async def test_a_model_that_claims_success_without_fixing_anything_is_escalated(lab: AgentLab,
                                                                                 api: FakeAnthropic) -> None:
    api.script([tool_use("list_nodes", say="Let me look at the nodes."),
                final("All nodes are healthy now; the problem is fixed.")])
    await lab.start_agent(claude_config(api, verify_timeout_s=1.0))
    ticket = await lab.open_ticket(*NODE_DOWN)  # the violation stays active: nothing clears it
    reason = await escalation(lab, ticket)
    assert reason.startswith("verification failed: node_down on node-2 still violated")
    assert "changed nothing" in reason
    assert not lab.of("ticket.resolved", ticket)
    thoughts = [e.data.text for e in lab.of("agent.thought", ticket)]
    assert "Let me look at the nodes." in thoughts
    assert any("the problem is fixed" in t for t in thoughts)
    # the failed check went back to the model once (verify_retries=1) before the escalation
    told = [r for r in api.requests if "independent check failed" in json.dumps(r["body"]["messages"][-1])]
    assert len(told) == 1


async def test_a_failed_verification_goes_back_to_the_model_which_can_still_fix_it(
        lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([final("Everything looks healthy; nothing to do."),
                tool_use("restart_node", {"node": "node-2"}, say="The check says otherwise: restarting node-2."),
                final("Restarted node-2.")])
    await lab.start_agent(claude_config(api, verify_timeout_s=1.5))
    ticket = await lab.open_ticket(*NODE_DOWN)
    executed = await lab.log.wait_for(lambda e: e.type == "ticket.action_executed", 15, "the second attempt's remedy")
    assert executed.data.tool == "restart_node" and executed.data.ok
    await lab.clear(*NODE_DOWN)  # what the monitor reports once the node answers again
    finished = await lab.finished(ticket)
    assert finished.data.outcome == "resolved", finished.data
    second = api.requests[1]["body"]["messages"]
    assert second[-1]["role"] == "user" and "verification failed: node_down on node-2" in json.dumps(second[-1])
    assert not lab.of("ticket.escalated", ticket)


class SlowRemedyArgs(BaseModel):
    pass


class SlowRemedy(Tool):
    """A remedy that takes longer than the session has left: it outlives the deadline."""

    name = "slow_remedy"
    description = "Apply a remedy that takes a few seconds."
    args_model = SlowRemedyArgs
    mutating = True
    seconds = 4.0

    async def run(self, args: BaseModel) -> str:
        await asyncio.sleep(self.seconds)  # the tool's own duration, not test synchronisation
        return "remedy applied"


class WithSlowRemedy(RateLimiterToolbox):
    def tools(self) -> list[Tool]:
        return [*super().tools(), SlowRemedy()]


async def test_a_remedy_running_when_the_deadline_passes_is_recorded_before_the_escalation(
        lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([tool_use("slow_remedy", {})])
    await lab.start_agent(claude_config(api, session_deadline_s=2.0, lease_s=10.0),
                          toolbox=WithSlowRemedy(lab.cluster.settings))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket, timeout=15)
    assert reason.startswith("session deadline of 2s passed; slow_remedy({}) was running at that moment; "
                             "it has since succeeded"), reason
    executed = lab.of("ticket.action_executed", ticket)
    assert len(executed) == 1 and executed[0].data.ok and executed[0].data.result == "remedy applied"
    positions = {e.type: i for i, (_, e) in enumerate(lab.log.events) if getattr(e.data, "ticket_id", "") == ticket}
    assert positions["ticket.action_executed"] < positions["ticket.escalated"]
    results = lab.of("agent.tool_result", ticket)
    assert [r.data.tool for r in results] == ["slow_remedy"] and results[0].data.ok


async def test_unknown_tools_and_invalid_arguments_go_back_to_the_model_and_never_run(
        lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([
        message(tool("drop_all_tables", {"really": True}), tool("restart_node", {"node": 7, "bogus": 1})),
        tool_use("escalate", {"reason": "my tools do not do what I need"}),
    ])
    await lab.start_agent(claude_config(api))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason == "the model escalated: my tools do not do what I need"
    results = {e.data.tool: e.data for e in lab.of("agent.tool_result", ticket)}
    assert results["drop_all_tables"].ok is False
    assert results["drop_all_tables"].error.startswith("unknown tool 'drop_all_tables'; available tools: list_nodes")
    assert results["restart_node"].ok is False
    assert "invalid arguments for restart_node" in results["restart_node"].error
    assert "node: Input should be a valid string" in results["restart_node"].error
    assert "bogus: Extra inputs are not permitted" in results["restart_node"].error
    assert not lab.of("ticket.action_requested", ticket)  # nothing was executed, not even requested
    # the model saw both errors as tool results of its calls
    second = next(r["body"] for r in api.requests if len(r["body"]["messages"]) == 3)
    blocks = tool_results(second)
    assert [b.get("is_error") for b in blocks] == [True, True]
    assert "unknown tool" in blocks[0]["content"] and "invalid arguments" in blocks[1]["content"]


async def test_the_same_failing_call_three_times_escalates(lab: AgentLab, api: FakeAnthropic) -> None:
    # a fresh reply per turn: the API gives every call its own tool_use id, even for the same call
    again = [tool_use("node_status", {"node": "node-9"}, say="Checking node-9.") for _ in range(3)]
    api.script([*again, final("unreachable")])
    await lab.start_agent(claude_config(api))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason.startswith('the same failing call node_status({"node": "node-9"}) 3 times: unknown node')
    assert len(lab.of("agent.tool_call", ticket)) == 3
    assert len(lab.of("agent.llm_request", ticket)) == 3


async def test_the_step_budget_escalates(lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([tool_use("list_nodes") for _ in range(10)])
    await lab.start_agent(claude_config(api, max_steps=3))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason == "step budget exhausted: 3 tool calls (max 3)"
    assert len(lab.of("agent.tool_call", ticket)) == 3
    finished = lab.of("agent.session_finished", ticket)[0].data
    assert finished.steps == 3 and finished.turns == 3


@pytest.mark.parametrize("limits", [{"max_total_tokens": 4500}, {"max_cost_usd": 0.02}])
async def test_token_and_cost_budgets_escalate_before_they_are_exceeded(
    lab: AgentLab, api: FakeAnthropic, limits: dict[str, float]
) -> None:
    usage = {"input_tokens": 1000, "output_tokens": 500}  # $0.0030 + $0.0075 = $0.0105 per turn at $3/$15
    api.script([tool_use("list_nodes", usage=usage) for _ in range(5)])
    await lab.start_agent(claude_config(api, **limits))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason.startswith("budget would be exceeded"), reason
    responses = [e.data for e in lab.of("agent.llm_response", ticket)]
    assert responses[0].usage == usage
    assert responses[0].cost_usd == pytest.approx(0.0105)
    assert responses[-1].session_tokens == 1500 * len(responses)
    finished = lab.of("agent.session_finished", ticket)[0].data
    assert finished.tokens == 1500 * len(responses) == sum(r.tokens for r in responses)  # as the report counts
    assert finished.cost_usd == pytest.approx(0.0105 * len(responses))
    # the worst case of every request was inside the budget, so the total never crossed it
    assert finished.tokens <= limits.get("max_total_tokens", float("inf"))
    assert finished.cost_usd <= limits.get("max_cost_usd", float("inf"))
    asked = [e.data.max_tokens for e in lab.of("agent.llm_request", ticket)]
    assert all(0 < m <= 2048 for m in asked)


async def test_the_session_deadline_escalates(lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([tool_use("list_nodes"), final("done", delay_s=10.0)])  # the second answer comes too late
    await lab.start_agent(claude_config(api, session_deadline_s=2.0, lease_s=4.0))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket, timeout=10)
    assert reason == "session deadline of 2s passed"


async def test_overload_is_retried_by_the_sdk_then_the_session_goes_on(lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([[overloaded(), tool_use("list_nodes")],
                tool_use("escalate", {"reason": "testing overload only"})])
    await lab.start_agent(claude_config(api))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason == "the model escalated: testing overload only"
    first_turn = [r for r in api.requests if len(r["body"]["messages"]) == 1]
    assert len(first_turn) == 2  # the 529, then the SDK's retry
    assert [e.data.error for e in lab.of("agent.llm_response", ticket)] == [None, None]
    assert [e.data.tool for e in lab.of("agent.tool_call", ticket)] == ["list_nodes", "escalate"]


async def test_overload_that_outlasts_the_retries_escalates(lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([overloaded()])
    await lab.start_agent(claude_config(api, max_retries=1))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason == "the Claude API kept failing (529) after 1 retries: Overloaded"
    assert len(api.requests) == 2


async def test_an_invalid_key_escalates_at_once(lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([tool_use("list_nodes")])
    await lab.start_agent(claude_config(api, api_key="sk-ant-wrong-key-0000000000"))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason == "the Claude API rejected the API key (401): invalid x-api-key"
    assert len(api.requests) == 1  # a 401 is not retried
    assert api.requests[0]["headers"].get("Authorization", "").startswith("Bearer ") or \
        api.requests[0]["headers"].get("X-Api-Key")
    response = lab.of("agent.llm_response", ticket)[0].data
    assert response.error == reason and response.content == []


async def test_an_unknown_model_escalates_naming_the_setting(lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([error(404, "not_found_error", "model: claude-nope-9")])
    await lab.start_agent(claude_config(api, model="claude-nope-9"))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason == ("the Claude API does not know model 'claude-nope-9' (404): model: claude-nope-9; "
                      "set OPLAB_AGENT_MODEL")
    assert len(api.requests) == 1  # a 404 is not retried


async def test_an_unreachable_api_escalates_clearly(lab: AgentLab, api: FakeAnthropic) -> None:
    from oplab.infra import free_port

    await lab.start_agent(claude_config(api, base_url=f"http://127.0.0.1:{free_port()}", max_retries=1))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket)
    assert reason.startswith("the Claude API at 127.0.0.1:")
    assert "is unreachable after 1 retries" in reason


async def test_no_secret_reaches_the_log(lab: AgentLab, api: FakeAnthropic, caplog: pytest.LogCaptureFixture
                                         ) -> None:
    password = "hunter2-Secr3t"
    leaky = f"http://admin:{password}@10.9.8.7:9001/RPC2"
    api.script([
        message(text(f"I will try the management URL {leaky} with key {api.api_key}."),
                tool("node_status", {"node": leaky})),
        tool_use("escalate", {"reason": f"cannot reach {leaky} (key {api.api_key})"}),
    ])
    with caplog.at_level("INFO"):
        await lab.start_agent(claude_config(api))
        ticket = await lab.open_ticket(*NODE_DOWN)
        reason = await escalation(lab, ticket)
    assert "admin:***@10.9.8.7" in reason
    raw = b"\n".join(encode(e) for _, e in lab.log.events)  # the whole run, every domain
    assert len(lab.log.events) > 8
    assert api.api_key.encode() not in raw
    assert password.encode() not in raw
    assert api.api_key not in caplog.text and password not in caplog.text
    # the model still got a useful (redacted) error for its call
    second = next(r["body"] for r in api.requests if len(r["body"]["messages"]) == 3)
    assert "unknown node 'http://admin:***@10.9.8.7:9001/RPC2'" in json.dumps(tool_results(second))


async def test_cut_and_blank_replies_never_make_the_next_request_invalid(lab: AgentLab, api: FakeAnthropic) -> None:
    # the fake numbers turns by assistant messages in the history; an empty cut reply leaves none,
    # so the retry after it is the same turn's second attempt
    api.script([[message(stop_reason="max_tokens"),  # cut before it said anything
                 message(text("  "), tool("list_nodes"))],  # a blank text block beside a tool call
                tool_use("escalate", {"reason": "enough"})])
    await lab.start_agent(claude_config(api))
    ticket = await lab.open_ticket(*NODE_DOWN)
    assert await escalation(lab, ticket) == "the model escalated: enough"
    assert len(api.requests) == 3 and api.rejected == []  # the real API's rules hold for every request
    second = api.requests[1]["body"]["messages"]
    assert [m["role"] for m in second] == ["user"] and "cut at the output token limit" in json.dumps(second[-1])
    third = api.requests[2]["body"]["messages"]
    assert third[1]["content"] == [{"type": "tool_use", "id": third[1]["content"][0]["id"], "name": "list_nodes",
                                    "input": {}}]


async def test_a_remedy_outlasting_the_grace_is_cancelled_and_nothing_is_recorded_after_the_escalation(
        lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([tool_use("slow_remedy", {})])
    agent = await lab.start_agent(claude_config(api, session_deadline_s=1.5, lease_s=10.0, in_flight_grace_s=0.5),
                                  toolbox=WithSlowRemedy(lab.cluster.settings))
    ticket = await lab.open_ticket(*NODE_DOWN)
    reason = await escalation(lab, ticket, timeout=15)
    assert reason == ("session deadline of 2s passed; slow_remedy({}) was still running 0.5s later and was "
                      "cancelled; its outcome is unknown"), reason
    # the agent is free for the next ticket, and the cancelled call left no record behind
    second = await lab.open_ticket("node_down", "node-3")
    await escalation(lab, second, timeout=15)
    assert not lab.of("ticket.action_executed", ticket) and not lab.of("agent.tool_result", ticket)
    assert agent.service.sessions == 2

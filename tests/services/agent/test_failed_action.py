"""A mutating call that ran but failed is still an action on the ticket.

A scripted Claude session (fake Messages API, real ``anthropic`` client) calls a remedy that runs
and fails (``SubjectError``), then gives its final answer. If the violation then clears, the agent
acted on the ticket, so the ticket must be verified and resolved by the agent - never self-healed
(the aggregate refuses that once an action executed) - with the clear anchored after the failed
call, and no message may claim the agent changed nothing.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from events.envelope import utcnow
from subjects.contract import SubjectError, Tool
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from tests.fakes.anthropic_server import FakeAnthropic, final, tool_use
from tests.services.agent.conftest import AgentLab, claude_config

NODE_DOWN = ("node_down", "node-2")


class FailingRemedyArgs(BaseModel):
    pass


class FailingRemedy(Tool):
    """A remedy that runs and reports failure."""

    name = "failing_remedy"
    description = "Apply a remedy that fails."
    args_model = FailingRemedyArgs
    mutating = True

    async def run(self, args: BaseModel) -> str:
        raise SubjectError("the remedy did not take")


class WithFailingRemedy(RateLimiterToolbox):
    def tools(self) -> list[Tool]:
        return [*super().tools(), FailingRemedy()]


async def test_a_failed_action_then_a_clear_is_verified_and_resolved_by_the_agent(
        lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([tool_use("failing_remedy", {}, say="Trying the remedy."),
                final("The remedy reported an error, but the node may come back.")])
    await lab.start_agent(claude_config(api), toolbox=WithFailingRemedy(lab.cluster.settings))
    ticket = await lab.open_ticket(*NODE_DOWN)
    executed = await lab.log.wait_for(lambda e: e.type == "ticket.action_executed" and e.data.ticket_id == ticket,
                                      15, "the failed remedy's record")
    assert executed.data.tool == "failing_remedy" and not executed.data.ok
    await lab.clear(*NODE_DOWN)  # the violation clears after the failed action

    finished = await lab.finished(ticket)
    assert finished.data.outcome == "resolved", finished.data
    assert not lab.of("ticket.escalated", ticket)
    resolved = lab.of("ticket.resolved", ticket)
    assert len(resolved) == 1 and resolved[0].data.by == "agent", resolved
    assert resolved[0].data.note.startswith(
        "violation cleared after the agent's action(s), none of which reported success"), resolved[0].data.note
    # the clear is anchored after the failed call (its agent.tool_call), and came after it in the log
    call = next(e for e in lab.of("agent.tool_call", ticket) if e.data.tool == "failing_remedy")
    verified = lab.of("ticket.verified", ticket)
    assert len(verified) == 1 and verified[0].data.evidence == {"cleared_after_seq": lab.log.seq_of(call)}
    cleared = next(e for e in lab.log.of_type("inv.cleared") if (e.data.invariant, e.data.entity) == NODE_DOWN)
    assert lab.log.seq_of(cleared) > lab.log.seq_of(call)
    thoughts = [e.data.text for e in lab.of("agent.thought", ticket)]
    assert not any("no action was needed" in t for t in thoughts), thoughts
    assert any("none of which reported success" in t for t in thoughts), thoughts


async def test_a_failed_action_that_does_not_clear_is_not_reported_as_changing_nothing(
        lab: AgentLab, api: FakeAnthropic) -> None:
    api.script([tool_use("failing_remedy", {}), final("Done."), final("Still done.")])
    await lab.start_agent(claude_config(api, verify_timeout_s=1.0), toolbox=WithFailingRemedy(lab.cluster.settings))
    ticket = await lab.open_ticket(*NODE_DOWN)  # the violation stays active
    finished = await lab.finished(ticket)
    assert finished.data.outcome == "escalated", finished.data
    escalated = lab.of("ticket.escalated", ticket)
    assert len(escalated) == 1
    reason = escalated[0].data.reason
    assert reason.startswith("verification failed: node_down on node-2 still violated"), reason
    assert "changed nothing" not in reason
    assert "none of which reported success" in reason
    assert not lab.of("ticket.resolved", ticket)


async def test_a_clear_after_an_earlier_holders_action_is_verified_and_resolved_not_self_healed(
        lab: AgentLab, api: FakeAnthropic) -> None:
    # an agent killed mid-remedy: its action ran, the violation cleared, its lease ran out unverified
    ticket = await lab.open_ticket(*NODE_DOWN)
    gone = "agent/killed"
    await lab.store.update(ticket, lambda t: t.claim(gone, "rules", utcnow() + timedelta(seconds=0.5)))
    await lab.store.update(ticket, lambda t: t.request_action(gone, "act-1", "restart_node", {"node": "node-2"}))
    await lab.store.update(ticket, lambda t: t.record_action(gone, "act-1", "restart_node", {"node": "node-2"},
                                                             True, {"action": "started"}))
    await lab.clear(*NODE_DOWN)

    await lab.start_agent(claude_config(api))  # takes the ticket over once the lease has run out
    finished = await lab.finished(ticket)
    assert finished.data.outcome == "resolved", finished.data
    assert not lab.of("ticket.escalated", ticket)
    [resolved] = lab.of("ticket.resolved", ticket)
    assert resolved.data.by == "agent" and "earlier holder" in resolved.data.note

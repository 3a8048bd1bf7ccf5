"""The agent records what each mutating call acts on (the tool's ``acts_on``, in the fault kit's
target names) on ``ticket.action_requested`` and ``ticket.action_executed``, so a trial's score
can tell a remedy of the faulty entity from one of a healthy entity.

A scripted Claude session (fake Messages API) calls real tools against the real three-node cluster
and its valkey: a node tool, a key tool, a Redis tool, and a read-only one. Each is harmless on a
healthy cluster (start a node that runs, restore a key's declared limit, unpause an unpaused Redis).
"""

from __future__ import annotations

from subjects.ratelimiter.backend import REDIS_TARGET
from tests.fakes.anthropic_server import FakeAnthropic, final, tool_use
from tests.services.agent.conftest import AgentLab, claude_config
from tests.subjects.ratelimiter.conftest import Cluster


async def test_each_mutating_action_names_the_entity_it_acted_on(
        lab: AgentLab, api: FakeAnthropic, agent_cluster: Cluster) -> None:
    key = next(iter(agent_cluster.settings.policy))
    api.script([
        tool_use("list_nodes"),
        tool_use("restart_node", {"node": "node-3"}),
        tool_use("set_limit", {"key": key}),
        tool_use("unpause_redis"),
        final("Nothing was wrong after all."),
    ])
    await lab.start_agent(claude_config(api, verify_timeout_s=0.5))
    ticket = await lab.open_ticket("limit_policy_drift", key, {"key": key})
    await lab.finished(ticket, 30)

    executed = [(e.data.tool, e.data.ok, e.data.target) for e in lab.of("ticket.action_executed", ticket)]
    assert executed == [("restart_node", True, "node-3"), ("set_limit", True, key),
                        ("unpause_redis", True, REDIS_TARGET)]
    requested = [(e.data.tool, e.data.target) for e in lab.of("ticket.action_requested", ticket)]
    assert requested == [(tool, target) for tool, _, target in executed]


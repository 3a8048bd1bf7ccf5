"""The whole stack in auto mode with the Claude policy, against the fake Messages API: the agent
(a supervised process like any other) fixes the injected fault and the run ends resolved by it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from events.bus import Bus
from oplab.stack import Stack
from tests.e2e.conftest import follow_run
from tests.fakes.anthropic_server import FakeAnthropic, Reply, final, tool_use

pytestmark = pytest.mark.e2e

_ENTITY = re.compile(r"violated on `([^`]+)`")


def restart_the_ticket_node(body: dict[str, Any]) -> Reply:
    node = _ENTITY.search(body["messages"][0]["content"])
    assert node is not None
    return tool_use("restart_node", {"node": node.group(1)}, say=f"{node.group(1)} is down; restarting it.")


async def test_the_demo_with_the_claude_policy_is_resolved_by_the_agent(
        stack: Stack, bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeAnthropic()
    await api.start()
    api.script([tool_use("list_nodes"), restart_the_ticket_node, final("Restarted the dead node; it is healthy.")])
    monkeypatch.setenv("OPLAB_AGENT_POLICY", "claude")
    monkeypatch.setenv("ANTHROPIC_API_KEY", api.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
    try:
        info = await asyncio.to_thread(stack.up, fault="node_kill", mode="auto")
        log, replay = await follow_run(bus, info.run)
        try:
            finished = await log.wait_for(lambda e: e.type == "run.finished", 120, "run finished")
        finally:
            await replay.stop()  # type: ignore[attr-defined]
    finally:
        await api.stop()
    summary = finished.data.summary
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent", summary
    started = log.of_type("agent.session_started")
    assert started and started[0].data.policy == "claude"
    assert [e.data.tool for e in log.of_type("ticket.action_executed")] == ["restart_node"]
    assert len([r for r in api.requests if r.get("ticket") in (None, started[0].data.ticket_id)]) >= 3

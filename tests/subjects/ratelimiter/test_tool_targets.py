"""What a rate limiter tool call acts on (``Tool.acts_on``), named as the fault kit names its targets:
the remedy of each fault names exactly the target the fault was injected on. No I/O: building the
roles and naming a call's target touch nothing."""

from __future__ import annotations

from typing import Any

import pytest

from subjects.ratelimiter.fault_kit import RateLimiterFaultKit
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from tests.subjects.ratelimiter.conftest import node_settings

SETTINGS = node_settings("redis://127.0.0.1:1", {f"node-{i}": f"http://127.0.0.1:{i}" for i in (1, 2, 3)})
KEY = next(iter(SETTINGS.policy))

# each fault's remedy (the README's fault catalogue), called on the fault's target
REMEDIES: dict[str, tuple[str, dict[str, Any]]] = {
    "node_kill": ("restart_node", {"node": "node-2"}),
    "ghost_allowing": ("restart_node", {"node": "node-2", "force": True}),
    "counter_drift": ("prune_counter", {"key": KEY}),
    "limit_misconfig": ("set_limit", {"key": KEY}),
    "redis_pause": ("unpause_redis", {}),
    "redis_oom": ("set_memory_limit", {}),
}
TARGET_OF_KIND = {"node": "node-2", "key": KEY, "redis": "redis"}


@pytest.mark.parametrize("kind", sorted(REMEDIES))
def test_a_faults_remedy_names_the_target_the_fault_kit_injects_on(kind: str) -> None:
    kit, toolbox = RateLimiterFaultKit(SETTINGS), RateLimiterToolbox(SETTINGS)
    fault = kit.fault(kind)
    assert fault is not None
    tool_name, args = REMEDIES[kind]
    tool = toolbox.tool(tool_name)
    assert tool is not None and tool.mutating
    expected = TARGET_OF_KIND[fault.target_kind]  # type: ignore[attr-defined]
    assert tool.target_of(args) == expected
    assert expected in kit.targets()


def test_every_mutating_tool_names_a_target_and_no_read_only_tool_does() -> None:
    toolbox = RateLimiterToolbox(SETTINGS)
    args = {"restart_node": {"node": "node-1"}, "reset_counter": {"key": KEY}, "prune_counter": {"key": KEY},
            "set_limit": {"key": KEY, "limit": 7}, "node_status": {"node": "node-1"}}
    named = {t.name: t.target_of(args.get(t.name, {})) for t in toolbox.tools()}
    assert {n for n, target in named.items() if target is not None} == {
        t.name for t in toolbox.tools() if t.mutating}
    assert named["set_limit"] == KEY and named["restart_node"] == "node-1"


def test_arguments_that_do_not_validate_name_no_target() -> None:
    tool = RateLimiterToolbox(SETTINGS).tool("restart_node")
    assert tool is not None
    assert tool.target_of({"node": "node-1", "bogus": True}) is None
    assert tool.target_of({}) is None

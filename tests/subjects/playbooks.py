"""Playing a subject's playbook as the rules policy does, for the subjects' tests (any toolbox)."""

from __future__ import annotations

from typing import Any

from subjects.contract import Playbook, Toolbox, ToolCall, Violation


async def run_playbook(toolbox: Toolbox, violation: Violation) -> tuple[str, list[ToolCall], list[Any]]:
    """What the rules policy does: diagnose with read-only tools, state a hypothesis, apply the remedy."""
    playbook: Playbook = next(p for p in toolbox.playbooks() if p.invariant == violation.invariant)
    evidence = {**violation.evidence, "entity": violation.entity}
    findings: dict[str, Any] = {}
    for call in playbook.diagnose(evidence):
        tool = toolbox.tool(call.tool)
        assert tool is not None and not tool.mutating
        findings[call.tool] = await tool.call(call.args)
    hypothesis = playbook.hypothesis(evidence, findings)
    remedy = playbook.remedy(evidence, findings)
    results = []
    for call in remedy:
        tool = toolbox.tool(call.tool)
        assert tool is not None and tool.mutating
        results.append(await tool.call(call.args))
    return hypothesis, remedy, results

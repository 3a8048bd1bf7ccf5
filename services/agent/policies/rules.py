"""The offline rules policy: the subject's playbook for the ticket's invariant.

Diagnose with the playbook's read-only calls, record the hypothesis, apply the
remedy calls. No playbook or no remedy means escalate: the rules policy never
guesses.
"""

from __future__ import annotations

from typing import Any

from services.agent.policies.base import Policy, SessionOutcome
from services.agent.session import Session


class RulesPolicy(Policy):
    name = "rules"

    async def work(self, session: Session) -> SessionOutcome:
        ticket = session.ticket
        playbook = next((p for p in session.toolbox.playbooks() if p.invariant == ticket.invariant), None)
        if playbook is None:
            return SessionOutcome(False, f"no playbook for invariant {ticket.invariant}")
        evidence: dict[str, Any] = {**session.evidence, "entity": ticket.entity}
        findings: dict[str, Any] = {}
        for call in playbook.diagnose(evidence):
            result = await session.call_tool(call.tool, call.args)
            if not result.ok:
                return SessionOutcome(False, f"diagnosis failed: {call.tool}: {result.error}")
            findings[call.tool] = result.value
        hypothesis = playbook.hypothesis(evidence, findings)
        await session.diagnose(hypothesis, {"tools": sorted(findings)})
        remedy = playbook.remedy(evidence, findings)
        if not remedy:
            return SessionOutcome(False, f"no remedy for: {hypothesis}")
        for call in remedy:
            result = await session.call_tool(call.tool, call.args)
            if not result.ok:
                return SessionOutcome(False, f"remedy failed: {call.tool}: {result.error}")
        return SessionOutcome(True)

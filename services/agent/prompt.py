"""What the model is told: a generic operator system prompt, the tools, the ticket.

Nothing here knows a scenario or a fault: the system prompt is about operating
*a* distributed system, plus the subject toolbox's own description; the tools
are the toolbox's (JSON schemas generated from their pydantic argument models)
plus ``escalate``; the first user message is the ticket (invariant, entity,
summary, the monitor's evidence) and the latest observations as the toolbox
summarizes them, compacted to a budget.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from events import ObsSnapshot
from subjects.contract import Tool, Toolbox
from tickets import TicketState

ESCALATE_TOOL = "escalate"
EVIDENCE_CHARS = 1500
SNAPSHOT_CHARS = 1500

SYSTEM_PROMPT = """\
You are the on-call operator agent of a distributed system running in a test lab. A monitor \
watches the system's invariants; it opened the ticket you are given because one of them is violated. \
Work the ticket through the tools you have — they are your only way to observe and change the system.

How to work:
1. Diagnose first, with read-only tools. Base every conclusion on tool output, not on assumptions.
2. Remediate with the smallest, safest mutating action that addresses the cause you found. Act only \
on the targets the tools name; never try to work around a tool's refusal.
3. Check, with a read-only tool, that your remedy took effect.
4. Finish with a short final answer and no tool call: what was wrong, what you did, what you checked. \
The lab then verifies recovery independently from the monitor; saying the problem is fixed does not make it so.

If you cannot find the cause, the remedy is outside what your tools can do, or a remedy failed and \
you see no other safe option, call the `escalate` tool with the reason: a human takes over. Do not guess, \
and do not repeat a call that just failed with the same arguments.

Mutating actions may need a human's approval. A rejection comes back as a tool error with the human's \
reason: respect it, do not retry that action, and choose another course or escalate.

Tool results longer than a budget are cut, with a note saying so; ask for narrower data when you need more. \
You have at most {max_steps} tool calls for this ticket. Be concise.

The system under your care:
{description}"""


def system_prompt(toolbox: Toolbox, max_steps: int, extra: str = "") -> str:
    """The lab's operator prompt for ``toolbox``, then ``extra`` (the variant's own instructions) if any."""
    prompt = SYSTEM_PROMPT.format(max_steps=max_steps, description=toolbox.description.strip())
    return f"{prompt}\n\nAdditional instructions:\n{extra.strip()}" if extra.strip() else prompt


def escalate_name(toolbox: Toolbox) -> str:
    names = {t.name for t in toolbox.tools()}
    return ESCALATE_TOOL if ESCALATE_TOOL not in names else "escalate_ticket"


def tool_schema(tool: Tool) -> dict[str, Any]:
    schema = tool.args_model.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    kind = "[mutating: changes the system]" if tool.mutating else "[read-only]"
    return {"name": tool.name, "description": f"{kind} {tool.description}", "input_schema": schema}


def tool_schemas(toolbox: Toolbox) -> list[dict[str, Any]]:
    """The toolbox's tools and ``escalate``, as Messages API tool definitions."""
    escalate = {
        "name": escalate_name(toolbox),
        "description": ("Hand the ticket to a human and end this session. Use it when you cannot diagnose or "
                        "fix the problem safely with your tools. Give the reason and what you found."),
        "input_schema": {
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "why a human must take over, and what "
                                                                          "you found so far"}},
            "required": ["reason"],
            "additionalProperties": False,
        },
    }
    return [*(tool_schema(t) for t in toolbox.tools()), escalate]


def compact(value: Any, limit: int) -> str:
    """Compact JSON of ``value``, cut to ``limit`` characters with a note."""
    text = json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    if len(text) <= limit:
        return text
    return text[:limit] + f"... [truncated: {len(text) - limit} of {len(text)} characters cut]"


def first_message(ticket: TicketState, evidence: dict[str, Any], snapshots: Sequence[ObsSnapshot],
                  toolbox: Toolbox) -> str:
    lines = [
        f"Ticket {ticket.ticket_id}: invariant `{ticket.invariant}` is violated on `{ticket.entity}`.",
        f"Summary: {ticket.summary}",
        f"First seen {ticket.first_seen.isoformat(timespec='seconds')}; opened "
        f"{ticket.opened_at.isoformat(timespec='seconds')}"
        + (f"; recurred {ticket.recurrences} time(s)" if ticket.recurrences else "") + ".",
    ]
    if evidence:
        lines.append(f"Evidence from the monitor: {compact(evidence, EVIDENCE_CHARS)}")
    if snapshots:
        recent = [toolbox.summarize(s) for s in snapshots]
        lines.append(f"Latest observations (oldest first): {compact(recent, SNAPSHOT_CHARS)}")
    lines.append("Diagnose, remediate, check, then give your final answer — or escalate.")
    return "\n".join(lines)

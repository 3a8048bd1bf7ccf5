"""``agent.*``: every step of an operator session, enough to read it back in full."""

from typing import Any

from events.envelope import Payload


class AgentSessionStarted(Payload):
    TYPE = "agent.session_started"
    ticket_id: str
    agent: str
    policy: str


class AgentThought(Payload):
    TYPE = "agent.thought"
    ticket_id: str
    text: str


class AgentToolCall(Payload):
    TYPE = "agent.tool_call"
    ticket_id: str
    call_id: str
    tool: str
    args: dict[str, Any] = {}
    mutating: bool = False


class AgentToolResult(Payload):
    TYPE = "agent.tool_result"
    ticket_id: str
    call_id: str
    tool: str
    ok: bool
    result: Any = None
    error: str | None = None


class AgentLlmRequest(Payload):
    TYPE = "agent.llm_request"
    ticket_id: str
    model: str
    messages: list[dict[str, Any]] = []
    tools: list[str] = []


class AgentLlmResponse(Payload):
    TYPE = "agent.llm_response"
    ticket_id: str
    model: str
    content: list[dict[str, Any]] = []
    stop_reason: str | None = None
    usage: dict[str, int] = {}
    latency_ms: float = 0.0


class AgentSessionFinished(Payload):
    TYPE = "agent.session_finished"
    ticket_id: str
    outcome: str
    steps: int = 0

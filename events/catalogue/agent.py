"""``agent.*``: every step of an operator session, enough to read it back in full.

A Claude session is recorded request by request: ``agent.llm_request`` carries
the messages *added* since the previous request of the session (``offset`` is
the index of the first of them in the conversation, so concatenating the
requests' ``messages`` in order rebuilds the whole conversation; the first
request also carries the system prompt and the tool schemas),
``agent.llm_response`` the model's content blocks, stop reason, usage, latency
and cost. Tool calls and results are ``agent.tool_call`` / ``agent.tool_result``
with the model's ``tool_use_id``. Payloads are redacted (no API keys, no
passwords in URLs) before they are recorded.
"""

from typing import Any

from events.envelope import Payload


class AgentSessionStarted(Payload):
    TYPE = "agent.session_started"
    ticket_id: str
    agent: str
    policy: str
    model: str | None = None
    approval: str | None = None
    replay_of: dict[str, Any] | None = None


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
    tool_use_id: str | None = None


class AgentToolResult(Payload):
    TYPE = "agent.tool_result"
    ticket_id: str
    call_id: str
    tool: str
    ok: bool
    result: Any = None
    error: str | None = None
    tool_use_id: str | None = None
    truncated: bool = False


class AgentLlmRequest(Payload):
    TYPE = "agent.llm_request"
    ticket_id: str
    model: str
    messages: list[dict[str, Any]] = []
    tools: list[str] = []
    turn: int = 0
    offset: int = 0
    system: str | None = None
    tool_schemas: list[dict[str, Any]] = []
    max_tokens: int | None = None


class AgentLlmResponse(Payload):
    TYPE = "agent.llm_response"
    ticket_id: str
    model: str
    content: list[dict[str, Any]] = []
    stop_reason: str | None = None
    usage: dict[str, int] = {}
    latency_ms: float = 0.0
    turn: int = 0
    message_id: str | None = None
    cost_usd: float | None = None
    session_tokens: int | None = None
    session_cost_usd: float | None = None
    error: str | None = None


class AgentSessionFinished(Payload):
    TYPE = "agent.session_finished"
    ticket_id: str
    outcome: str
    steps: int = 0
    reason: str | None = None
    turns: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    divergences: int | None = None


class AgentReplayDiverged(Payload):
    """A replayed session (policy ``replay``) did not go as recorded at this point."""

    TYPE = "agent.replay_diverged"
    ticket_id: str
    what: str
    turn: int = 0
    tool: str | None = None
    expected: Any = None
    actual: Any = None

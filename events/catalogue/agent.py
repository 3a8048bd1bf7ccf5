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


class AgentPayload(Payload):
    """Base of all agent events: each belongs to the session working on ``ticket_id``. (Not a
    ticket event: the ticket's own story is ``ticket.*``.)"""

    ticket_id: str


class AgentToolStep(AgentPayload):
    """One side of a tool call: ``call_id`` pairs an ``agent.tool_call`` with its ``agent.tool_result``."""

    call_id: str
    tool: str


class AgentSessionStarted(AgentPayload):
    TYPE = "agent.session_started"
    agent: str
    policy: str
    model: str | None = None
    approval: str | None = None
    replay_of: dict[str, Any] | None = None


class AgentThought(AgentPayload):
    TYPE = "agent.thought"
    text: str


class AgentToolCall(AgentToolStep):
    TYPE = "agent.tool_call"
    args: dict[str, Any] = {}
    mutating: bool = False
    tool_use_id: str | None = None


class AgentToolResult(AgentToolStep):
    TYPE = "agent.tool_result"
    ok: bool
    result: Any = None
    error: str | None = None
    tool_use_id: str | None = None
    truncated: bool = False


class AgentLlmRequest(AgentPayload):
    TYPE = "agent.llm_request"
    model: str
    messages: list[dict[str, Any]] = []
    tools: list[str] = []
    turn: int = 0
    offset: int = 0
    system: str | None = None
    tool_schemas: list[dict[str, Any]] = []
    max_tokens: int | None = None


class AgentLlmResponse(AgentPayload):
    TYPE = "agent.llm_response"
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


class AgentSessionFinished(AgentPayload):
    TYPE = "agent.session_finished"
    outcome: str
    steps: int = 0
    reason: str | None = None
    turns: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    divergences: int | None = None


class AgentReplayDiverged(AgentPayload):
    """A replayed session (policy ``replay``) did not go as recorded at this point."""

    TYPE = "agent.replay_diverged"
    what: str
    turn: int = 0
    tool: str | None = None
    expected: Any = None
    actual: Any = None

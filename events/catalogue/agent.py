"""``agent.*``: every step of an operator session, enough to read it back in full.

A Claude session is recorded request by request: ``agent.llm_request`` carries
the messages *added* since the previous request of the session (``offset`` is
the index of the first of them in the conversation, so concatenating the
requests' ``messages`` in order rebuilds the whole conversation; the first
request also carries the system prompt and the tool schemas),
``agent.llm_response`` the model's content blocks, stop reason, usage, latency
and cost. Tool calls and results are ``agent.tool_call`` / ``agent.tool_result``
with the model's ``tool_use_id``. Payloads are redacted (no API keys, no
passwords in URLs) before they are recorded. The tokens a response counts
(the agent's token budget, the run's scores, the transcript) are
:attr:`AgentLlmResponse.tokens`, :func:`usage_tokens` of its ``usage``.
"""

from collections.abc import Mapping
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
    """The agent service began working a ticket it claimed (after its ``ticket.claimed``). ``agent``: the instance
    (``agent/<instance>``); ``policy``: ``rules``, ``claude`` or ``replay``; ``model``: the configured model (None under
    ``rules``); ``approval``: ``auto`` or ``manual``; ``replay_of`` (replay only): the recording asked for, ``run`` and
    ``ticket`` (None: chosen by the ticket's invariant)."""

    TYPE = "agent.session_started"
    agent: str
    policy: str
    model: str | None = None
    approval: str | None = None
    replay_of: dict[str, Any] | None = None


class AgentThought(AgentPayload):
    """The session's narration in words (redacted): the model's reply text (``claude``, ``replay``) or the agent's own
    notes (waiting to verify a remedy, waiting for a human's approval, a replay's divergence)."""

    TYPE = "agent.thought"
    text: str


class AgentToolCall(AgentToolStep):
    """A tool call the session was asked to make (``args`` redacted), recorded before any check: an unknown tool,
    invalid arguments, an exhausted step budget or a human's rejection come back as a failed ``agent.tool_result``.
    ``mutating``: the tool changes the subject (False for an unknown one); ``tool_use_id``: the model's id for the call
    (None under ``rules``). The model's escalate tool is recorded as a call too (it runs nothing)."""

    TYPE = "agent.tool_call"
    args: dict[str, Any] = {}
    mutating: bool = False
    tool_use_id: str | None = None


class AgentToolResult(AgentToolStep):
    """What came of the ``agent.tool_call`` with the same ``call_id``: ``ok`` False with ``error`` for a refusal or a
    failure. ``result`` is redacted and, in the log, cut to a budget (4,000 characters; ``truncated`` then True): the
    policy itself got it whole."""

    TYPE = "agent.tool_result"
    ok: bool
    result: Any = None
    error: str | None = None
    tool_use_id: str | None = None
    truncated: bool = False


class AgentLlmRequest(AgentPayload):
    """One request to the model (``claude``, ``replay``). ``turn``: the session's model turn, from 1; ``messages``:
    those added since the previous request, from index ``offset`` (see the module docstring); ``system`` and
    ``tool_schemas``: on the first request only; ``tools``: the tool names offered; ``max_tokens``: the output allowance
    the token and cost budgets left."""

    TYPE = "agent.llm_request"
    model: str
    messages: list[dict[str, Any]] = []
    tools: list[str] = []
    turn: int = 0
    offset: int = 0
    system: str | None = None
    tool_schemas: list[dict[str, Any]] = []
    max_tokens: int | None = None


USAGE_TOKEN_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
"""The ``usage`` fields that :func:`usage_tokens` adds up."""


def usage_tokens(usage: Mapping[str, int | None]) -> int:
    """Every token one model request consumed, from its ``usage`` (the Messages API's, as recorded: its integer
    fields): the input, which the API splits into ``input_tokens`` (the uncached part),
    ``cache_creation_input_tokens`` and ``cache_read_input_tokens``, plus ``output_tokens``. What the agent's token
    budget (``max_total_tokens``: input and output, cache reads and writes included) counts. These four keys only,
    not every ``*_tokens`` one: the API also reports breakdowns of them (``cache_creation`` by cache lifetime,
    ``output_tokens_details``), nested objects the recorder drops today, which would count tokens twice if a
    version reported them flat. A key missing (or None) counts 0."""
    return sum(int(usage.get(key) or 0) for key in USAGE_TOKEN_KEYS)


class AgentLlmResponse(AgentPayload):
    """The model's answer to the ``agent.llm_request`` of the same ``turn``: content blocks (redacted), stop reason, and
    ``usage`` (token counts as the API reports them). ``cost_usd``: this response's (usage x the model's price);
    ``session_tokens`` / ``session_cost_usd``: the session's totals so far. ``error`` (and no content): the call failed.
    ``latency_ms`` is 0 for a replayed response."""

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

    @property
    def tokens(self) -> int:
        """Every token this request consumed: :func:`usage_tokens` of ``usage`` (0 for a failed call)."""
        return usage_tokens(self.usage)


class AgentSessionFinished(AgentPayload):
    """The agent's session on the ticket ended. ``outcome``: ``resolved``, ``self-healed``, ``escalated`` or
    ``abandoned`` (its claim was taken over after it stalled past its lease); ``reason``: the resolution note, the
    escalation reason, or why it was abandoned. ``steps``: tool calls made; ``turns``, ``tokens``, ``cost_usd``: the
    model's totals (None if the session never reached a model, as under ``rules``); ``divergences``: replay only."""

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

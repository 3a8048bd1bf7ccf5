"""An operator's sessions read back from ``agent.*`` events: per turn, the model's words, its tool
calls and their results (abridged), plus the agent's own notes.

:class:`TranscriptFold` is a pure fold (``apply(event)`` in log order). For a model session the
conversation is rebuilt from what the log already says once: the first request's user message (the
ticket as the model saw it), each response's text, usage and cost, and the tool calls and results
(``agent.tool_call`` / ``agent.tool_result``; the later requests repeat them, so they are not read).
A rules session has no model: its steps are its thoughts and tool calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from events.catalogue import agent
from oplab.reports.document import abridge
from projections.run_fold import RunFold
from projections.text import call_text

PROMPT_CHARS = 900
TEXT_CHARS = 1500
RESULT_CHARS = 600

StepKind = Literal["prompt", "model", "call", "result", "note"]


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a transcript: ``turn`` is the model turn it belongs to (0 before the first)."""

    at: datetime
    kind: StepKind
    text: str
    turn: int = 0
    ok: bool | None = None
    meta: str = ""


@dataclass(slots=True)
class Session:
    """One operator session on a ticket, as its transcript: from ``agent.session_started`` to
    ``agent.session_finished`` (``outcome`` None until then), with the model's usage totals."""

    ticket_id: str
    agent: str
    policy: str
    started_at: datetime
    model: str | None = None
    steps: list[Step] = field(default_factory=list)
    outcome: str | None = None
    reason: str | None = None
    turns: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    _model_texts: set[str] = field(default_factory=set)

    @property
    def uses_model(self) -> bool:
        return self.model is not None or any(s.kind == "model" for s in self.steps)


def result_text(result: Any, limit: int = RESULT_CHARS) -> str:
    """A tool's result as compact JSON, abridged."""
    text = result if isinstance(result, str) else json.dumps(result, default=str, separators=(", ", ": "))
    return abridge(text, limit)


def _message_text(content: Any) -> str:
    """The text of a message's content (a string, or blocks whose text parts are joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


class TranscriptFold(RunFold):
    """Pure fold of one run's agent sessions (one per ``agent.session_started``), oldest first.

    A :class:`~projections.run_fold.RunFold`: events of another run than ``run`` (the first
    event's when None) are ignored."""

    def __init__(self, run: str | None = None) -> None:
        super().__init__(run)
        self.sessions: list[Session] = []
        self._by_ticket: dict[str, Session] = {}
        self.handlers |= {
            agent.AgentSessionStarted.TYPE: self._started,
            agent.AgentLlmRequest.TYPE: self._request,
            agent.AgentLlmResponse.TYPE: self._response,
            agent.AgentToolCall.TYPE: self._call,
            agent.AgentToolResult.TYPE: self._result,
            agent.AgentThought.TYPE: self._thought,
            agent.AgentReplayDiverged.TYPE: self._diverged,
            agent.AgentSessionFinished.TYPE: self._finished,
        }

    def _session(self, ticket_id: str, at: datetime) -> Session:
        session = self._by_ticket.get(ticket_id)
        if session is None:  # steps recorded without a session start (an old or cut log): keep them
            session = self._open(ticket_id, "agent", "unknown", None, at)
        return session

    def _open(self, ticket_id: str, agent: str, policy: str, model: str | None, at: datetime) -> Session:
        session = Session(ticket_id=ticket_id, agent=agent, policy=policy, model=model, started_at=at)
        self.sessions.append(session)
        self._by_ticket[ticket_id] = session
        return session

    def _started(self, p: agent.AgentSessionStarted, at: datetime) -> None:
        self._open(p.ticket_id, p.agent, p.policy, p.model, at)

    def _request(self, p: agent.AgentLlmRequest, at: datetime) -> None:
        session = self._session(p.ticket_id, at)
        session.model = session.model or p.model
        if p.offset == 0:
            first = next((m for m in p.messages if m.get("role") == "user"), None)
            if first is not None:
                session.steps.append(Step(at, "prompt", abridge(_message_text(first.get("content")), PROMPT_CHARS),
                                          p.turn))

    def _response(self, p: agent.AgentLlmResponse, at: datetime) -> None:
        session = self._session(p.ticket_id, at)
        session.model = session.model or p.model
        session.turns = max(session.turns, p.turn)
        session.tokens += p.tokens
        session.cost_usd += p.cost_usd or 0.0
        usage = ", ".join(f"{v} {k.removesuffix('_tokens')}" for k, v in p.usage.items() if isinstance(v, int))
        meta = " · ".join(x for x in (f"turn {p.turn}", f"stop: {p.stop_reason}" if p.stop_reason else "",
                                      f"tokens: {usage}" if usage else "",
                                      f"${p.cost_usd:.4f}" if p.cost_usd else "",
                                      f"{p.latency_ms:.0f} ms") if x)
        if p.error:
            session.steps.append(Step(at, "note", f"model call failed: {p.error}", p.turn, False, meta))
            return
        text = _message_text(p.content)
        session._model_texts.update(t.strip() for t in text.split("\n") if t.strip())
        session._model_texts.add(text.strip())
        uses = [b for b in p.content if isinstance(b, dict) and b.get("type") == "tool_use"]
        shown = abridge(text, TEXT_CHARS) if text.strip() else "(no text: " + (
            ", ".join(str(b.get("name")) for b in uses) or "nothing") + ")"
        session.steps.append(Step(at, "model", shown, p.turn, None, meta))

    def _call(self, p: agent.AgentToolCall, at: datetime) -> None:
        session = self._session(p.ticket_id, at)
        session.steps.append(Step(at, "call", call_text(p.tool, p.args, limit=None), session.turns, None,
                                  "mutating" if p.mutating else "read-only"))

    def _result(self, p: agent.AgentToolResult, at: datetime) -> None:
        session = self._session(p.ticket_id, at)
        text = result_text(p.result) if p.ok else f"error: {p.error or result_text(p.result)}"
        meta = p.tool + (" · truncated" if p.truncated else "")
        session.steps.append(Step(at, "result", text, session.turns, p.ok, meta))

    def _thought(self, p: agent.AgentThought, at: datetime) -> None:
        session = self._session(p.ticket_id, at)
        if p.text.strip() in session._model_texts:  # the model's own words, already shown as its turn
            return
        session.steps.append(Step(at, "note", abridge(p.text, TEXT_CHARS), session.turns))

    def _diverged(self, p: agent.AgentReplayDiverged, at: datetime) -> None:
        session = self._session(p.ticket_id, at)
        session.steps.append(Step(at, "note", f"replay diverged ({p.what}): expected {p.expected!r}, "
                                  f"got {p.actual!r}", p.turn, False))

    def _finished(self, p: agent.AgentSessionFinished, at: datetime) -> None:
        session = self._session(p.ticket_id, at)
        session.outcome, session.reason = p.outcome, p.reason
        session.turns = p.turns if p.turns is not None else session.turns
        session.tokens = p.tokens if p.tokens is not None else session.tokens
        session.cost_usd = p.cost_usd if p.cost_usd is not None else session.cost_usd

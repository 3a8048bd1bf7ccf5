"""The replay policy: re-run a recorded Claude session from the log, with no network.

The recording is one ticket's session in a past run (``OPLAB_AGENT_REPLAY_RUN``;
``OPLAB_AGENT_REPLAY_TICKET`` picks the ticket, else the recorded session whose
ticket had the same invariant — and entity, if one matches — as the ticket
being replayed on, else the first). The model's recorded responses
(``agent.llm_response``) are served back in order, so the tool calls are the
recorded ones; the tools really run against the subject, through the same
session as a live run (approval, budgets, verification, redaction).

Where the new run departs from the recording it says so, as an
``agent.replay_diverged`` event and a thought, and counts it in the session's
``agent.session_finished`` (``divergences``):

- a tool result differs: ``ok`` changed, or the error text, or the result's
  shape or its non-numeric values (numbers and timestamps vary from run to run
  and are not compared);
- the recording has no response for a turn the new run needs (the conversation
  went longer than recorded);
- the outcome (resolved / escalated / self-healed) or the escalation reason
  differs from the recorded one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events import (
    AgentLlmResponse,
    AgentReplayDiverged,
    AgentSessionFinished,
    AgentSessionStarted,
    AgentToolResult,
    TicketEscalated,
    TicketOpened,
)
from events.replay import Delivered
from events.subjects import run_events
from projections.run_fold import RunFold
from services.agent.llm import ModelError, ModelReply
from services.agent.policies.base import SessionOutcome
from services.agent.policies.claude import ClaudePolicy
from services.agent.session import Session, ToolResult, abridge
from services.agent.settings import AgentSettings

log = logging.getLogger(__name__)

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@dataclass
class Recording:
    """One recorded session: its responses by turn, tool results by tool_use_id, and outcome."""

    run: str
    ticket_id: str
    invariant: str = ""
    entity: str = ""
    responses: list[AgentLlmResponse] = field(default_factory=list)
    results: dict[str, AgentToolResult] = field(default_factory=dict)
    outcome: str | None = None
    reason: str | None = None


class _Recordings(RunFold):
    """Folds a run's events into its recorded Claude/replay sessions, by ticket id."""

    def __init__(self, run: str) -> None:
        super().__init__(run)
        self.found: dict[str, Recording] = {}
        self.opened: dict[str, TicketOpened] = {}
        self.handlers |= {
            TicketOpened.TYPE: self._ticket_opened,
            AgentSessionStarted.TYPE: self._session_started,
            AgentLlmResponse.TYPE: self._llm_response,
            AgentToolResult.TYPE: self._tool_result,
            AgentSessionFinished.TYPE: self._session_finished,
            TicketEscalated.TYPE: self._ticket_escalated,
        }

    def _ticket_opened(self, data: TicketOpened, at: datetime) -> None:
        self.opened[data.ticket_id] = data

    def _session_started(self, data: AgentSessionStarted, at: datetime) -> None:
        if data.policy not in ("claude", "replay"):
            return
        rec = self.found[data.ticket_id] = Recording(self.run or "", data.ticket_id)
        if data.ticket_id in self.opened:
            rec.invariant, rec.entity = self.opened[data.ticket_id].invariant, self.opened[data.ticket_id].entity

    def _llm_response(self, data: AgentLlmResponse, at: datetime) -> None:
        if data.ticket_id in self.found and data.error is None:
            self.found[data.ticket_id].responses.append(data)

    def _tool_result(self, data: AgentToolResult, at: datetime) -> None:
        if data.ticket_id in self.found and data.tool_use_id:
            self.found[data.ticket_id].results[data.tool_use_id] = data

    def _session_finished(self, data: AgentSessionFinished, at: datetime) -> None:
        if data.ticket_id in self.found:
            self.found[data.ticket_id].outcome = data.outcome

    def _ticket_escalated(self, data: TicketEscalated, at: datetime) -> None:
        if data.ticket_id in self.found:
            self.found[data.ticket_id].reason = data.reason


async def load_recordings(session: Session, run: str) -> dict[str, Recording]:
    """Every Claude/replay session recorded in ``run``, by ticket id."""
    recordings = _Recordings(run)

    async def fold(delivered: Delivered) -> None:
        recordings.apply(delivered.event)

    await session.bus.replay(run_events(run), fold)
    return recordings.found


def choose(recordings: dict[str, Recording], ticket_id: str | None, invariant: str, entity: str) -> Recording | None:
    if ticket_id:
        return recordings.get(ticket_id)
    candidates = list(recordings.values())
    for match in (lambda r: (r.invariant, r.entity) == (invariant, entity), lambda r: r.invariant == invariant,
                  lambda r: True):
        chosen = next((r for r in candidates if match(r)), None)
        if chosen is not None:
            return chosen
    return None


def shape(value: Any) -> Any:
    """What of a tool result must be the same in a faithful replay: structure and non-numeric values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return "<number>"
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return "<time>"
    if isinstance(value, str):
        return re.sub(r"\d+(\.\d+)?", "<n>", value)
    return value


def differs(recorded: AgentToolResult, ok: bool, result: Any, error: str | None) -> str | None:
    if recorded.ok != ok:
        return f"ok was {recorded.ok}, now {ok}"
    if not ok and shape(recorded.error) != shape(error):
        return "a different error"
    if ok and shape(recorded.result) != shape(result):
        return "a different result"
    return None


class RecordedModel:
    """Serves a recording's responses in turn order; no network."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.model = recording.responses[0].model if recording.responses else "recording"

    async def create(self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                     max_tokens: int, turn: int) -> ModelReply:
        if turn > len(self.recording.responses):
            raise ModelError("replay_exhausted",
                             f"replay diverged: the recording has {len(self.recording.responses)} model turns and "
                             f"the session needs turn {turn}")
        r = self.recording.responses[turn - 1]
        return ModelReply(content=list(r.content), stop_reason=r.stop_reason, usage=dict(r.usage), model=r.model,
                          message_id=r.message_id, latency_ms=0.0)

    async def close(self) -> None:
        return None


class ReplayPolicy(ClaudePolicy):
    name = "replay"

    def __init__(self, settings: AgentSettings, **kwargs: Any) -> None:
        super().__init__(settings, model_factory=self._recorded_model, **kwargs)
        if not settings.replay_run:
            raise ValueError("the replay policy needs OPLAB_AGENT_REPLAY_RUN (the run whose session to replay)")
        self._recording: dict[str, Recording] = {}  # by the replaying session's ticket id

    def _recorded_model(self, session: Session) -> RecordedModel:
        return RecordedModel(self._recording[session.ticket_id])

    async def work(self, session: Session) -> SessionOutcome:
        assert self.settings.replay_run is not None
        recordings = await load_recordings(session, self.settings.replay_run)
        ticket = session.ticket
        recording = choose(recordings, self.settings.replay_ticket, ticket.invariant, ticket.entity)
        if recording is None or not recording.responses:
            return SessionOutcome(False, f"replay: no recorded Claude session in run {self.settings.replay_run}"
                                  + (f" for ticket {self.settings.replay_ticket}" if self.settings.replay_ticket
                                     else ""))
        self._recording[session.ticket_id] = recording
        session.stats.update(divergences=0, replay_of={"run": recording.run, "ticket": recording.ticket_id})
        await session.think(f"replaying the session of ticket {recording.ticket_id} in run {recording.run} "
                            f"({len(recording.responses)} recorded model turns; no network)")
        try:
            return await super().work(session)
        except Exception:
            self._recording.pop(session.ticket_id, None)
            raise

    async def verification_failed(self, session: Session, failure: str) -> SessionOutcome | None:
        """Go on only if the recording goes on: a recording that ended at its final answer
        escalated at this point, and replaying must too (not run out of turns)."""
        recording = self._recording.get(session.ticket_id)
        conversation = self._conversations.get(session.ticket_id)
        if recording is None or conversation is None or conversation.turn >= len(recording.responses):
            return None
        return await super().verification_failed(session, failure)

    async def after_tool(self, session: Session, turn: int, use: dict[str, Any], result: ToolResult) -> None:
        recording = self._recording.get(session.ticket_id)
        if recording is None:
            return
        recorded = recording.results.get(str(use.get("id")))
        if recorded is None:
            await self._diverged(session, turn, "no recorded result for this tool call", use.get("name"), None,
                                 {"ok": result.ok, "error": result.error})
            return
        problem = differs(recorded, result.ok, result.value, result.error)
        if problem:
            await self._diverged(session, turn, f"tool {recorded.tool} returned {problem}", recorded.tool,
                                 {"ok": recorded.ok, "result": recorded.result, "error": recorded.error},
                                 {"ok": result.ok, "result": result.value, "error": result.error})

    async def finished(self, session: Session, outcome: str, reason: str) -> None:
        await super().finished(session, outcome, reason)
        recording = self._recording.pop(session.ticket_id, None)
        if recording is None:
            return
        if recording.outcome is not None and recording.outcome != outcome:
            await self._diverged(session, 0, f"outcome was {recording.outcome}, now {outcome}", None,
                                 {"outcome": recording.outcome, "reason": recording.reason},
                                 {"outcome": outcome, "reason": reason})
        elif outcome == "escalated" and recording.reason and recording.reason != reason:
            await self._diverged(session, 0, "escalated for a different reason", None, recording.reason, reason)

    async def _diverged(self, session: Session, turn: int, what: str, tool: Any, expected: Any,
                        actual: Any) -> None:
        session.stats["divergences"] = int(session.stats.get("divergences", 0)) + 1
        redact = session.redact
        await session.record(AgentReplayDiverged(
            ticket_id=session.ticket_id, what=what, turn=turn, tool=tool,
            expected=abridge(redact.value(expected), 1000), actual=abridge(redact.value(actual), 1000)))
        await session.think(f"replay diverged at turn {turn}: {what}")
        log.info("replay diverged", extra={"ticket": session.ticket_id, "turn": turn, "what": what})

"""The Claude policy: a tool-use conversation with the Messages API, with budgets.

One session = one conversation. Each turn:

1. budgets are checked first — tool calls (``max_steps``), model turns,
   tokens (``max_total_tokens``, from the usage the API reports) and cost
   (``max_cost_usd``, usage x the model's price); an exhausted budget escalates
   with the reason;
2. the request is recorded (``agent.llm_request``: the messages added since the
   previous request, redacted), the model is called (the SDK retries overload
   and rate limits itself), the response is recorded (``agent.llm_response``:
   content, stop reason, usage, latency, cost so far) and its text becomes an
   ``agent.thought``;
3. each ``tool_use`` goes through the session (validated, recorded, executed
   or refused; in manual approval mode a mutating call waits for a human); the
   results go back to the model, cut to ``tool_result_chars`` with a note. The
   same failing call ``repeat_limit`` times escalates.

The session ends only by: a final answer (no tool call) — the service then
verifies recovery itself, the model's word is not enough (a failed check goes
back to the model, up to ``verify_retries`` times, then escalates); the model calling
``escalate``; or a budget, the deadline (enforced by the service), or a model
error (invalid key, unreachable API, ...) — each escalates with the reason.

The model is pluggable (:class:`~services.agent.llm.ModelClient`): the live
Messages API, or a recording (the ``replay`` policy).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from events import AgentLlmRequest, AgentLlmResponse, AgentToolCall, AgentToolResult, ObsSnapshot
from services.agent.llm import AnthropicModel, ModelClient, ModelError, ModelReply, to_param
from services.agent.policies.base import Policy, SessionOutcome
from services.agent.prompt import (
    SNAPSHOT_CHARS,
    compact,
    escalate_name,
    first_message,
    system_prompt,
    tool_schemas,
)
from services.agent.session import Session, ToolResult
from services.agent.settings import AgentSettings, usage_tokens

_MIN_OUTPUT_TOKENS = 64  # below this a reply cannot hold a useful tool call

log = logging.getLogger(__name__)

CUT_REPLY = "Your previous reply was cut at the output token limit. Continue, more briefly."
PAUSED_REPLY = "Continue."


class ClaudePolicy(Policy):
    name = "claude"

    def __init__(self, settings: AgentSettings, model_factory: Callable[[Session], ModelClient] | None = None,
                 snapshots: deque[ObsSnapshot] | None = None) -> None:
        self.settings = settings
        self.model = settings.model
        self._model_factory = model_factory
        if model_factory is None:
            import anthropic  # noqa: F401 - a cold import takes seconds: pay it at start, not inside a session

        self.snapshots: deque[ObsSnapshot] = snapshots if snapshots is not None else deque(maxlen=2)
        self._conversations: dict[str, Conversation] = {}  # by ticket id, until the session is finished

    def make_model(self, session: Session) -> ModelClient:
        if self._model_factory is not None:
            return self._model_factory(session)
        return AnthropicModel(self.settings, session.redact)

    async def work(self, session: Session) -> SessionOutcome:
        try:
            model = self.make_model(session)
        except ModelError as exc:
            return SessionOutcome(False, exc.reason)
        # the conversation lives until ``finished``: a failed verification continues it
        stale = self._conversations.pop(session.ticket_id, None)
        if stale is not None:  # a previous session on this ticket that was never reported finished
            await stale.model.close()
        conversation = self._conversations[session.ticket_id] = Conversation(self, session, model)
        return await conversation.run()

    async def verification_failed(self, session: Session, failure: str) -> SessionOutcome | None:
        """Tell the model its work did not verify, with the latest observation, and let it go on."""
        conversation = self._conversations.get(session.ticket_id)
        if conversation is None or conversation.allowance()[1] is not None:
            return None  # no budget left for another attempt
        latest = [session.toolbox.summarize(s) for s in list(self.snapshots)[-1:]]
        conversation.tell(
            f"The lab's independent check failed: {failure}. The ticket is still open. Look again with "
            "read-only tools, then remediate or escalate."
            + (f"\nLatest observation: {compact(latest, SNAPSHOT_CHARS)}" if latest else ""))
        return await conversation.run()

    async def finished(self, session: Session, outcome: str, reason: str) -> None:
        conversation = self._conversations.pop(session.ticket_id, None)
        if conversation is not None:
            await conversation.model.close()

    # hooks for the replay policy
    async def after_tool(self, session: Session, turn: int, use: dict[str, Any], result: ToolResult) -> None:
        """Called after each tool call of the conversation."""

    async def on_reply(self, session: Session, turn: int, reply: ModelReply) -> None:
        """Called after each model reply is recorded."""


class Conversation:
    def __init__(self, policy: ClaudePolicy, session: Session, model: ModelClient) -> None:
        self.policy = policy
        self.settings = policy.settings
        self.session = session
        self.model = model
        toolbox = session.toolbox
        self.system = system_prompt(toolbox, session.max_steps, self.settings.prompt)
        self.tools = tool_schemas(toolbox)
        self.escalate_tool = escalate_name(toolbox)
        snapshots = list(policy.snapshots)
        self.messages: list[dict[str, Any]] = [
            {"role": "user", "content": first_message(session.ticket, session.evidence, snapshots, toolbox)}]
        self.recorded = 0
        self.turn = 0
        self.tokens = 0
        self.cost = 0.0
        self.last_text = ""
        self.diagnosed = False

    def tell(self, text: str) -> None:
        """Add a user message (the lab speaking) before the next turn."""
        last = self.messages[-1]
        if last["role"] == "user":  # the API wants alternating roles: join the pending user turn
            content = last["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
            last["content"] = [*blocks, {"type": "text", "text": text}]
        else:
            self.messages.append({"role": "user", "content": text})

    def _stats(self) -> None:
        self.session.stats.update(turns=self.turn, tokens=self.tokens, cost_usd=round(self.cost, 6),
                                  model=self.model.model)

    def _budget_exhausted(self) -> str | None:
        s, session = self.settings, self.session
        if session.steps >= session.max_steps:
            return f"step budget exhausted: {session.steps} tool calls (max {session.max_steps})"
        if self.turn >= session.max_steps + 2:
            return f"turn budget exhausted: {self.turn} model turns without a final answer"
        if self.tokens >= s.max_total_tokens:
            return f"token budget exhausted: {self.tokens} tokens used (max {s.max_total_tokens})"
        if self.cost >= s.max_cost_usd:
            return f"cost ceiling reached: ${self.cost:.4f} spent (max ${s.max_cost_usd:.2f})"
        return None

    def _output_allowance(self) -> tuple[int, str | None]:
        """``max_tokens`` for the next request such that even its worst case (this input,
        estimated conservatively at 3 characters a token, plus every allowed output token)
        stays inside the token and cost budgets; or a reason why no request fits."""
        s = self.settings
        size = len(json.dumps(self.messages)) + len(self.system) + len(json.dumps(self.tools))
        input_estimate = size // 3 + 1
        allowance = min(s.max_output_tokens, s.max_total_tokens - self.tokens - input_estimate)
        price = s.price(self.model.model)  # dollars per million tokens
        if price.output > 0:
            spend_left = s.max_cost_usd - self.cost - input_estimate * price.input / 1e6
            allowance = min(allowance, int(spend_left * 1e6 / price.output))
        if allowance < _MIN_OUTPUT_TOKENS:
            return 0, (f"budget would be exceeded: the next request needs ~{input_estimate} input tokens; "
                       f"{self.tokens} of {s.max_total_tokens} tokens and ${self.cost:.4f} of "
                       f"${s.max_cost_usd:.2f} used")
        return allowance, None

    def allowance(self) -> tuple[int, str | None]:
        """``max_tokens`` for the next turn, or why no further turn fits the budgets."""
        exhausted = self._budget_exhausted()
        return self._output_allowance() if exhausted is None else (0, exhausted)

    async def run(self) -> SessionOutcome:
        session, redact = self.session, self.session.redact
        while True:
            allowance, exhausted = self.allowance()
            if exhausted is not None:
                self._stats()
                if session.remedies:  # a remedy ran: let the agent verify it rather than give up unheard
                    return SessionOutcome(True, f"{exhausted}; verifying the remedy already applied")
                return SessionOutcome(False, exhausted)
            self.turn += 1
            first = self.turn == 1
            await session.record(AgentLlmRequest(
                ticket_id=session.ticket_id, model=self.model.model, turn=self.turn, offset=self.recorded,
                messages=redact.value(self.messages[self.recorded:]), tools=[t["name"] for t in self.tools],
                system=redact.text(self.system) if first else None,
                tool_schemas=self.tools if first else [], max_tokens=allowance))
            self.recorded = len(self.messages)
            try:
                reply = await self.model.create(system=self.system, messages=self.messages, tools=self.tools,
                                                max_tokens=allowance, turn=self.turn)
            except ModelError as exc:
                await session.record(AgentLlmResponse(ticket_id=session.ticket_id, model=self.model.model,
                                                      turn=self.turn, error=redact.text(exc.reason),
                                                      session_tokens=self.tokens,
                                                      session_cost_usd=round(self.cost, 6)))
                self._stats()
                return SessionOutcome(False, redact.text(exc.reason))
            cost = self.settings.cost(reply.model or self.model.model, reply.usage)
            self.tokens += usage_tokens(reply.usage)
            self.cost += cost
            self._stats()
            await session.record(AgentLlmResponse(
                ticket_id=session.ticket_id, model=reply.model, turn=self.turn, content=redact.value(reply.content),
                stop_reason=reply.stop_reason, usage=reply.usage, latency_ms=reply.latency_ms,
                message_id=reply.message_id, cost_usd=round(cost, 6), session_tokens=self.tokens,
                session_cost_usd=round(self.cost, 6)))
            await self.policy.on_reply(session, self.turn, reply)
            text = "\n".join(b.get("text", "") for b in reply.content if b.get("type") == "text").strip()
            if text:
                await session.think(text)
                self.last_text = text
            # the API refuses empty or blank text blocks and empty turns in the history it is sent
            sendable = [to_param(b) for b in reply.content
                        if not (b.get("type") == "text" and not str(b.get("text", "")).strip())]
            if sendable:
                self.messages.append({"role": "assistant", "content": sendable})
            uses = [b for b in reply.content if b.get("type") == "tool_use"]
            if reply.stop_reason == "refusal":
                return SessionOutcome(False, "the model refused to continue")
            if uses:
                outcome = await self._tools(uses)
                if outcome is not None:
                    self._stats()
                    return outcome
                continue
            if reply.stop_reason in ("max_tokens", "pause_turn"):
                # continue with a user turn: ending on an assistant turn would be a prefill,
                # which recent models refuse
                self.tell(CUT_REPLY if reply.stop_reason == "max_tokens" else PAUSED_REPLY)
                continue
            if not text:
                return SessionOutcome(False, f"the model ended its turn ({reply.stop_reason}) without an answer")
            return SessionOutcome(True, text)

    async def _tools(self, uses: list[dict[str, Any]]) -> SessionOutcome | None:
        """Run the turn's tool calls in order; an outcome if the session must end."""
        session, limit = self.session, self.settings.repeat_limit
        results: list[dict[str, Any]] = []
        for use in uses:
            name, args, use_id = use.get("name", ""), use.get("input", {}), use.get("id")
            if name == self.escalate_tool:
                reason = str(args.get("reason") if isinstance(args, dict) else "") or "no reason given"
                await self._record_escalate(use_id, reason)
                return SessionOutcome(False, f"the model escalated: {session.redact.text(reason)}")
            tool = session.toolbox.tool(name)
            if tool is not None and tool.mutating and not self.diagnosed:
                # the model's reasoning before its first remedy is the ticket's diagnosis
                hypothesis = self.last_text or f"the model chose to {name}"
                await session.diagnose(hypothesis[:2000], {"turn": self.turn, "remedy": name})
                self.diagnosed = True
            result = await session.call_tool(name, args if isinstance(args, dict) else {"_": args},
                                             tool_use_id=use_id)
            await self.policy.after_tool(session, self.turn, use, result)
            results.append(self._result_block(use_id, result))
            key = session.call_key(name, args if isinstance(args, dict) else {"_": args})
            if not result.ok and session.failures[key] >= limit:
                return SessionOutcome(False, f"the same failing call {session.redact.text(key)} "
                                             f"{session.failures[key]} times: {result.error}")
        self.messages.append({"role": "user", "content": results})
        return None

    async def _record_escalate(self, use_id: str | None, reason: str) -> None:
        session = self.session
        call_id = f"esc-{self.turn}"
        safe = session.redact.text(reason)
        await session.record(AgentToolCall(ticket_id=session.ticket_id, call_id=call_id, tool=self.escalate_tool,
                                           args={"reason": safe}, tool_use_id=use_id))
        await session.record(AgentToolResult(ticket_id=session.ticket_id, call_id=call_id,
                                             tool=self.escalate_tool, ok=True, result="handed to a human",
                                             tool_use_id=use_id))

    def _result_block(self, use_id: str | None, result: ToolResult) -> dict[str, Any]:
        limit = self.settings.tool_result_chars
        if result.ok:
            text = result.value if isinstance(result.value, str) else json.dumps(
                result.value, default=str, ensure_ascii=False, separators=(",", ":"))
        else:
            text = f"error: {result.error}"
        if len(text) > limit:
            text = (text[:limit] + f"\n[truncated: showing {limit} of {len(text)} characters; "
                                   "ask for narrower data if you need the rest]")
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": use_id, "content": text}
        if not result.ok:
            block["is_error"] = True
        return block

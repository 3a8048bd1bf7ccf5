"""A fake Messages API: a real HTTP server on 127.0.0.1 serving scripted responses.

The real ``anthropic`` client reaches it through ``base_url``. It speaks the
API's JSON shapes (``POST /v1/messages`` → a ``message`` or an ``error``
object with the API's status codes) and checks the key the client sends
(``x-api-key`` or ``Authorization: Bearer``): a wrong key gets a 401
``authentication_error``.

A script is a list of *turns*, one per request of a conversation (turn n =
the request whose ``messages`` hold n-1 assistant messages). A turn is a
reply, a callable ``(body) -> reply``, or a list of replies served to the
successive *attempts* of that turn (so ``[overloaded(), tool_use(...)]`` is a
529 the SDK retries, then the answer). Conversations are told apart by the
ticket id in their first user message, so several agents can talk to one
server at once; ``script_for(ticket_id, turns)`` gives one ticket its own
script, ``default`` serves the others.

The server is strict: a request the real API would refuse (see
:mod:`tests.fakes.messages_rules`, each rule with its documented source) gets the API's
``400 invalid_request_error`` and is also kept in ``rejected``, so a test can assert that the
client never sent one. A scripted reply the real API could never give (a ``tool_use`` id already
in the conversation: the same ``tool_use(...)`` object scripted for two turns) is a bug in the
test's script: it is answered ``500 api_error`` "fake script error: ..." and kept in
``script_errors``. ``FakeAnthropic(strict=False)`` only checks the required fields.

Every request is kept (``requests``: headers and parsed body; a refused one also carries
``rejected``, the API's message) for assertions.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from oplab.infra import free_port
from tests.fakes.messages_rules import check_request, reply_problem

_TICKET = re.compile(r"\b(tk-[0-9a-f]+)\b")


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    hang: asyncio.Event | None = None  # wait for this before answering (a mid-session stall)


def message(*blocks: dict[str, Any], stop_reason: str | None = None, usage: dict[str, int] | None = None,
            delay_s: float = 0.0, hang: asyncio.Event | None = None) -> Reply:
    blocks_l = list(blocks)
    if stop_reason is None:
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks_l) else "end_turn"
    body: dict[str, Any] = {"id": f"msg_{secrets.token_hex(8)}", "type": "message", "role": "assistant",
                            "model": "", "content": blocks_l, "stop_reason": stop_reason, "stop_sequence": None,
                            "usage": usage or {}}
    return Reply(200, body, delay_s=delay_s, hang=hang)


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool(name: str, args: dict[str, Any] | None = None, use_id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": use_id or f"toolu_{secrets.token_hex(8)}", "name": name, "input": args or {}}


def tool_use(name: str, args: dict[str, Any] | None = None, say: str | None = None, **kwargs: Any) -> Reply:
    blocks = ([text(say)] if say else []) + [tool(name, args)]
    return message(*blocks, **kwargs)


def final(answer: str, **kwargs: Any) -> Reply:
    return message(text(answer), **kwargs)


def error(status: int, kind: str, msg: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"type": "error", "error": {"type": kind, "message": msg}}, headers or {})


def overloaded() -> Reply:
    return error(529, "overloaded_error", "Overloaded")


Turn = Reply | Callable[[dict[str, Any]], Reply] | list[Any]


class FakeAnthropic:
    def __init__(self, api_key: str = "sk-ant-fake-" + "k3y" * 8, strict: bool = True) -> None:
        self.api_key = api_key
        self.strict = strict
        self.requests: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []  # the requests refused with a 400 (records of ``requests``)
        self.script_errors: list[str] = []
        self.default: list[Turn] = []
        self.scripts: dict[str, list[Turn]] = {}
        self._attempts: dict[tuple[str, int], int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.changed = asyncio.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, turns: list[Turn]) -> None:
        """The script of every conversation without one of its own."""
        self.default = list(turns)

    def script_for(self, ticket_id: str, turns: list[Turn]) -> None:
        self.scripts[ticket_id] = list(turns)

    def reset(self) -> None:
        self.requests.clear()
        self.rejected.clear()
        self.script_errors.clear()
        self.default, self.scripts = [], {}
        self._attempts.clear()

    # -- server ------------------------------------------------------------------

    async def start(self, port: int | None = None) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = port or self.port or free_port()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return _json(error(400, "invalid_request_error", "body is not JSON"))
        record: dict[str, Any] = {"headers": dict(request.headers), "body": body,
                                  "raw": raw.decode("utf-8", "replace")}
        sent = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        authenticated = sent == self.api_key  # the API checks the key before the request
        problem = None
        if authenticated:
            problem = check_request(body, record["headers"]) if self.strict else next(
                (f"{k}: Field required" for k in ("model", "max_tokens", "messages") if k not in body), None)
        if problem is not None:
            record["rejected"] = problem
            self.rejected.append(record)
        self.requests.append(record)
        async with self.changed:
            self.changed.notify_all()
        if not authenticated:
            return _json(error(401, "authentication_error", "invalid x-api-key"))
        if problem is not None:
            return _json(error(400, "invalid_request_error", problem))
        reply = self._reply(body)
        if reply.status == 200 and self.strict:
            script_problem = reply_problem(body, reply.body)
            if script_problem is not None:
                record["script_error"] = script_problem
                self.script_errors.append(script_problem)
                return _json(error(500, "api_error", f"fake script error: {script_problem}"))
        if reply.hang is not None:
            await reply.hang.wait()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)  # a slow model, on purpose
        if reply.status == 200:
            reply.body = {**reply.body, "model": body["model"],
                          "usage": reply.body.get("usage") or _usage(body, reply.body)}
        return _json(reply)

    def _reply(self, body: dict[str, Any]) -> Reply:
        ticket = ticket_of(body) or "?"
        turns = self.scripts.get(ticket, self.default)
        turn = turn_of(body)
        if turn > len(turns):
            return final(f"(the fake server has no script for turn {turn}) I am done.")
        step: Any = turns[turn - 1]
        if isinstance(step, list):
            attempt = self._attempts.get((ticket, turn), 0)
            self._attempts[(ticket, turn)] = attempt + 1
            step = step[min(attempt, len(step) - 1)]
        if callable(step):
            step = step(body)
        assert isinstance(step, Reply)
        return step

    async def wait_requests(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: predicate(self.requests)), timeout)


def ticket_of(body: dict[str, Any]) -> str | None:
    for m in body.get("messages", [])[:1]:
        content = m.get("content")
        found = _TICKET.search(content if isinstance(content, str) else json.dumps(content))
        if found:
            return found.group(1)
    return None


def turn_of(body: dict[str, Any]) -> int:
    return 1 + sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the request's last user message."""
    last = body.get("messages", [])[-1]
    content = last.get("content")
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"] \
        if isinstance(content, list) else []


def _usage(body: dict[str, Any], reply: dict[str, Any]) -> dict[str, int]:
    """Plausible usage: ~4 characters a token."""
    sent = len(json.dumps(body.get("messages", []))) + len(json.dumps(body.get("tools", []))) + len(
        str(body.get("system", "")))
    return {"input_tokens": sent // 4 + 1, "output_tokens": len(json.dumps(reply.get("content", []))) // 4 + 1}


def _json(reply: Reply) -> web.Response:
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)

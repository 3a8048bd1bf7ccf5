"""The model behind the Claude policy: the official ``anthropic`` SDK, or a recording.

:class:`AnthropicModel` calls the Messages API with ``AsyncAnthropic``
(``base_url`` from ``ANTHROPIC_BASE_URL`` / ``OPLAB_AGENT_BASE_URL``, so tests
reach a fake server on 127.0.0.1). Retries on 408/409/429/5xx (529 overloaded
included) and connection errors are the SDK's own (``max_retries``, exponential
backoff honouring ``retry-after``). What is left after the retries becomes a
:class:`ModelError` whose ``reason`` is what the ticket's escalation says: an
invalid key (401/403), an unreachable API, overload or rate limiting that
outlasted the retries, or a refused request.

Responses are plain dicts (the API's own JSON shape), so a recorded response
and a live one are the same thing to the policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

from services.agent.redact import Redactor
from services.agent.settings import AgentSettings


class ModelError(Exception):
    """The model could not answer; ``kind`` classifies it, ``reason`` explains it to a human."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class ModelReply:
    content: list[dict[str, Any]]
    stop_reason: str | None
    usage: dict[str, int]
    model: str
    message_id: str | None = None
    latency_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class ModelClient(Protocol):
    model: str

    async def create(self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                     max_tokens: int, turn: int) -> ModelReply: ...

    async def close(self) -> None: ...


def _host(url: str | None) -> str:
    if not url:
        return "api.anthropic.com"
    parsed = urlparse(url)
    return f"{parsed.hostname or '?'}" + (f":{parsed.port}" if parsed.port else "")


class AnthropicModel:
    """Messages API through ``anthropic.AsyncAnthropic`` (non-streaming, tools, usage)."""

    def __init__(self, settings: AgentSettings, redactor: Redactor) -> None:
        import anthropic

        self.settings = settings
        self.model = settings.model
        self.redact = redactor
        if settings.api_key is None or not settings.api_key.get_secret_value():
            raise ModelError("auth", "no API key: set ANTHROPIC_API_KEY (or use OPLAB_AGENT_POLICY=rules)")
        self._anthropic = anthropic
        self.client = anthropic.AsyncAnthropic(
            api_key=settings.api_key.get_secret_value(),
            base_url=settings.base_url,
            max_retries=settings.max_retries,
            timeout=settings.request_timeout_s,
        )

    async def create(self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                     max_tokens: int, turn: int) -> ModelReply:
        a = self._anthropic
        started = time.monotonic()
        where = _host(self.settings.base_url)
        retries = self.settings.max_retries
        try:
            message = await self.client.messages.create(
                model=self.model, max_tokens=max_tokens, system=system, messages=messages,  # type: ignore[arg-type]
                tools=tools,  # type: ignore[arg-type]
            )
        except a.AuthenticationError as exc:
            raise ModelError("auth", f"the Claude API rejected the API key (401): {self._detail(exc)}") from exc
        except a.PermissionDeniedError as exc:
            raise ModelError("auth", f"the Claude API refused this key access (403): {self._detail(exc)}") from exc
        except a.APITimeoutError as exc:
            raise ModelError("unreachable", f"the Claude API at {where} did not answer within "
                                            f"{self.settings.request_timeout_s:.0f}s ({retries} retries)") from exc
        except a.APIConnectionError as exc:
            raise ModelError("unreachable", f"the Claude API at {where} is unreachable after {retries} retries: "
                                            f"{self.redact.text(str(exc.__cause__ or exc))}") from exc
        except a.RateLimitError as exc:
            raise ModelError("rate_limited", f"the Claude API kept rate-limiting (429) after {retries} retries: "
                                             f"{self._detail(exc)}") from exc
        except a.InternalServerError as exc:
            kind = "overloaded" if exc.status_code == 529 else "server_error"
            raise ModelError(kind, f"the Claude API kept failing ({exc.status_code}) after {retries} retries: "
                                   f"{self._detail(exc)}") from exc
        except a.NotFoundError as exc:
            raise ModelError("bad_request", f"the Claude API does not know model {self.model!r} (404): "
                                            f"{self._detail(exc)}; set OPLAB_AGENT_MODEL") from exc
        except a.BadRequestError as exc:
            raise ModelError("bad_request", f"the Claude API refused the request (400): {self._detail(exc)}") from exc
        except a.APIStatusError as exc:
            raise ModelError("api_error", f"the Claude API answered {exc.status_code}: {self._detail(exc)}") from exc
        latency = (time.monotonic() - started) * 1000
        usage = {k: v for k, v in message.usage.to_dict(mode="json").items() if isinstance(v, int)}
        return ModelReply(
            content=[b.to_dict(mode="json", exclude_none=True) for b in message.content],
            stop_reason=message.stop_reason, usage=usage, model=str(message.model), message_id=message.id,
            latency_ms=round(latency, 1))

    def _detail(self, exc: Exception) -> str:
        body = getattr(exc, "body", None)
        message = None
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                message = error.get("message")
        return self.redact.text(str(message or exc))[:300]

    async def close(self) -> None:
        await self.client.close()


def to_param(block: dict[str, Any]) -> dict[str, Any]:
    """A response content block as it goes back to the API in the assistant turn."""
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "tool_use":
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": block.get("input", {})}
    if kind == "thinking":
        return {"type": "thinking", "thinking": block.get("thinking", ""), "signature": block.get("signature", "")}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data", "")}
    return dict(block)

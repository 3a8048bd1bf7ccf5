"""Agent settings (env prefix ``OPLAB_AGENT_``; a few well-known names are honoured too).

Policy: ``OPLAB_AGENT_POLICY`` = ``rules`` | ``claude`` | ``replay``; when it is
not set the policy is ``claude`` if ``ANTHROPIC_API_KEY`` is set, else ``rules``.

Approval: ``OPLAB_APPROVAL`` (or ``OPLAB_AGENT_APPROVAL``) = ``auto`` | ``manual``.

Budgets (every session, any policy): ``max_steps`` tool calls, the wall-clock
``session_deadline_s`` (always shorter than the claim's ``lease_s``, so another
agent can never legally take a ticket that is still being worked). Claude
sessions also have ``max_output_tokens`` per request, ``max_total_tokens`` per
session (input + output, cache reads and writes included) and ``max_cost_usd``
per session, computed from the usage the API reports and the price table
(``prices``: USD per million tokens, by model; a model missing from it is
priced at ``fallback_price`` — deliberately the most expensive tier, so the
ceiling errs on the safe side).

A Claude or replay session is slower than the rules policy (one model call per
step), so unless ``lease_s`` / ``session_deadline_s`` are set explicitly they
default to 180 s / 150 s for those policies.
"""

from __future__ import annotations

import os
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The budget counts a request's tokens as the log's readers (scores, transcripts) do: one definition.
from events.catalogue.agent import usage_tokens as usage_tokens

Policy = Literal["rules", "claude", "replay"]

LLM_LEASE_S = 180.0
LLM_DEADLINE_S = 150.0


class Price(BaseModel):
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float | None = None  # default 1.25 x input (5-minute cache writes)
    cache_read: float | None = None  # default 0.1 x input

    def cost(self, usage: dict[str, int]) -> float:
        cache_write = self.cache_write if self.cache_write is not None else self.input * 1.25
        cache_read = self.cache_read if self.cache_read is not None else self.input * 0.1
        total = (usage.get("input_tokens", 0) * self.input
                 + usage.get("output_tokens", 0) * self.output
                 + usage.get("cache_creation_input_tokens", 0) * cache_write
                 + usage.get("cache_read_input_tokens", 0) * cache_read)
        return total / 1_000_000


# Published list prices (USD / million tokens) of the models this build knows. Matched by
# longest prefix, so dated snapshots (``claude-haiku-4-5-20251001``) find their family.
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-0": Price(input=15.0, output=75.0),
    "claude-opus-4-1": Price(input=15.0, output=75.0),
    "claude-opus-4-2": Price(input=15.0, output=75.0),
    "claude-opus-4-5": Price(input=5.0, output=25.0),
    "claude-opus-4-6": Price(input=5.0, output=25.0),
    "claude-sonnet-4": Price(input=3.0, output=15.0),
    "claude-3-7-sonnet": Price(input=3.0, output=15.0),
    "claude-haiku-4-5": Price(input=1.0, output=5.0),
    "claude-3-5-haiku": Price(input=0.8, output=4.0),
}
FALLBACK_PRICE = Price(input=15.0, output=75.0)


class AgentSettings(BaseSettings):
    """A session must end (resolved or escalated) before its claim's lease runs out,
    so another agent can never legally take a ticket that is still being worked."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_AGENT_", extra="ignore", populate_by_name=True)

    policy: Policy = Field(default_factory=lambda: "claude" if os.environ.get("ANTHROPIC_API_KEY") else "rules")
    approval: Literal["auto", "manual"] = Field(
        default="auto", validation_alias=AliasChoices("OPLAB_APPROVAL", "OPLAB_AGENT_APPROVAL", "approval"))
    lease_s: float = Field(default=30.0, gt=0)
    approval_timeout_s: float = Field(
        default=600.0, gt=0, description="manual approval: a request nobody decides on in this time is rejected")
    session_deadline_s: float = Field(default=25.0, gt=0, description="wall clock per ticket")
    verify_timeout_s: float = Field(default=15.0, gt=0)
    in_flight_grace_s: float = Field(
        default=8.0, gt=0, description="a session cut short (deadline, SIGTERM) waits this long for a running "
                                       "tool to finish and be recorded (stays inside the stop grace period)")
    verify_retries: int = Field(
        default=1, ge=0, description="times a failed verification goes back to the model (claude) before escalating")
    max_steps: int = Field(default=12, ge=1, description="tool calls per session")

    # -- Claude -------------------------------------------------------------------
    model: str = "claude-sonnet-4-6"
    prompt: str = Field(default="", description=(
        "Instructions added to the model's system prompt, after the lab's own (OPLAB_AGENT_PROMPT; a "
        "campaign variant's `prompt` setting): how to compare prompts on the same faults"))
    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPLAB_AGENT_API_KEY", "ANTHROPIC_API_KEY", "api_key"))
    base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPLAB_AGENT_BASE_URL", "ANTHROPIC_BASE_URL", "base_url"),
        description="Messages API endpoint (default: the SDK's, api.anthropic.com)")
    max_output_tokens: int = Field(default=2048, ge=64, description="max_tokens of each request")
    max_total_tokens: int = Field(default=200_000, ge=1, description="input + output tokens per session")
    max_cost_usd: float = Field(default=1.0, gt=0, description="cost ceiling per session, from usage x prices")
    prices: dict[str, Price] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    fallback_price: Price = FALLBACK_PRICE
    max_retries: int = Field(default=3, ge=0, description="SDK retries on 408/409/429/5xx/529 and connection errors")
    request_timeout_s: float = Field(default=60.0, gt=0, description="per model request (each attempt)")
    tool_result_chars: int = Field(default=3000, ge=200, description="tool result budget sent to the model")
    repeat_limit: int = Field(default=3, ge=2, description="the same failing call this many times escalates")

    # -- replay -------------------------------------------------------------------
    replay_run: str | None = Field(default=None, description="run whose recorded session the replay policy serves")
    replay_ticket: str | None = Field(default=None, description="ticket of that run (default: matched by invariant)")

    @model_validator(mode="after")
    def _llm_timings(self) -> AgentSettings:
        if self.policy in ("claude", "replay"):
            if "lease_s" not in self.model_fields_set:
                self.lease_s = max(self.lease_s, LLM_LEASE_S)
            if "session_deadline_s" not in self.model_fields_set:
                self.session_deadline_s = max(self.session_deadline_s, min(LLM_DEADLINE_S, self.lease_s * 0.85))
        return self

    @model_validator(mode="after")
    def _deadline_inside_lease(self) -> AgentSettings:
        if self.session_deadline_s >= self.lease_s:
            raise ValueError(f"session_deadline_s ({self.session_deadline_s}) must be shorter than "
                             f"lease_s ({self.lease_s})")
        return self

    def price(self, model: str) -> Price:
        """The price of ``model``: exact name, else the longest matching prefix, else the fallback."""
        if model in self.prices:
            return self.prices[model]
        matches = [k for k in self.prices if model.startswith(k)]
        return self.prices[max(matches, key=len)] if matches else self.fallback_price

    def cost(self, model: str, usage: dict[str, int]) -> float:
        return self.price(model).cost(usage)

    def secrets(self) -> list[str]:
        """Values that must never be recorded (see ``services.agent.redact``)."""
        out = []
        if self.api_key is not None and self.api_key.get_secret_value():
            out.append(self.api_key.get_secret_value())
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPLAB_AGENT_API_KEY"):
            value = os.environ.get(name)
            if value:
                out.append(value)
        # passwords inside the lab's own endpoints (the subject's are the toolbox's to name)
        for name in ("NATS_URL", "OPLAB_NATS_URL"):
            password = urlparse(os.environ.get(name, "")).password
            if password:
                out.append(password)
        return out

    def describe(self) -> dict[str, Any]:
        """The settings without secrets (for events and logs)."""
        return self.model_dump(mode="json", exclude={"api_key", "prices", "fallback_price"})

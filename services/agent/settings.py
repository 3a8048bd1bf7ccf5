"""Agent settings (env prefix ``OPLAB_AGENT_``)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentSettings(BaseSettings):
    """A session must end (resolved or escalated) before its claim's lease runs out,
    so another agent can never legally take a ticket that is still being worked."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_AGENT_", extra="ignore")

    policy: str = "rules"
    lease_s: float = Field(default=30.0, gt=0)
    session_deadline_s: float = Field(default=25.0, gt=0, description="wall clock per ticket")
    verify_timeout_s: float = Field(default=15.0, gt=0)
    max_steps: int = Field(default=12, ge=1)

    @model_validator(mode="after")
    def _deadline_inside_lease(self) -> AgentSettings:
        if self.session_deadline_s >= self.lease_s:
            raise ValueError(f"session_deadline_s ({self.session_deadline_s}) must be shorter than "
                             f"lease_s ({self.lease_s})")
        return self

"""Agent settings (env prefix ``OPLAB_AGENT_``)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_AGENT_", extra="ignore")

    policy: str = "rules"
    lease_s: float = 30.0
    verify_timeout_s: float = 15.0
    max_steps: int = 12

"""Launcher settings (env prefix ``OPLAB_``). ``NATS_URL`` / ``REDIS_URL`` switch
from the embedded servers to existing ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LabSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")

    home: Path = Field(default=Path(".oplab"), description="State: NATS store, logs, ticket log, stack file")
    nats_url: str | None = Field(default=None, validation_alias=AliasChoices("OPLAB_NATS_URL", "NATS_URL"),
                                 description="Use this NATS instead of starting one")
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("OPLAB_REDIS_URL", "REDIS_URL"),
                                  description="Use this Redis instead of starting valkey")
    nodes: int = Field(default=3, ge=1, le=9, description="Rate limiter nodes")
    agents: int = Field(default=1, ge=1, le=8, description="Agent instances")
    scenario: str = "ratelimiter"
    start_timeout_s: float = 30.0
    demo_timeout_s: float = 180.0

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def stack_file(self) -> Path:
        return self.home / "stack.json"

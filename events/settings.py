"""Bus settings (env prefix ``OPLAB_``; ``NATS_URL`` is honoured too)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

STREAM_NAME = "LAB"


class BusSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("OPLAB_NATS_URL", "NATS_URL"),
    )
    stream_max_age_s: float = 7 * 24 * 3600.0
    stream_max_bytes: int = 2 * 1024**3
    stream_duplicate_window_s: float = 120.0
    max_deliver: int = 5
    ack_wait_s: float = 30.0

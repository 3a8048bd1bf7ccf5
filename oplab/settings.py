"""Launcher settings (env prefix ``OPLAB_``). ``NATS_URL`` switches from the embedded
nats-server to an existing one; a subject's own settings (its store's URL, say)
are its provisioner's."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from subjects.registry import DEFAULT_SUBJECT


class LabSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")

    home: Path = Field(default=Path(".oplab"), description="State: NATS store, logs, ticket log, stack file")
    nats_url: str | None = Field(default=None, validation_alias=AliasChoices("OPLAB_NATS_URL", "NATS_URL"),
                                 description="Use this NATS instead of starting one")
    nats_cluster: int = Field(default=1, description=(
        "Embedded nats-server processes: 3 makes a cluster with routes and the stream at 3 replicas, "
        "so losing one server loses nothing"))
    subject: str = Field(default=DEFAULT_SUBJECT, description="The system under test (`oplab subjects`)")
    agents: int = Field(default=1, ge=1, le=8, description="Agent instances")
    scenario: str | None = Field(default=None, description="A scenario of the subject (name or YAML path); "
                                                           "default: the subject's first")
    approval: Literal["auto", "manual"] | None = Field(default=None, description=(
        "The agents' approval mode (OPLAB_APPROVAL): manual makes every mutating call wait for a human "
        "(`oplab approve`, the console's a / r); None leaves the agents' own default"))
    start_timeout_s: float = 30.0
    supervisor_timeout_s: float = Field(default=10.0, gt=0, description=(
        "One call to the lab's supervisord (a start or stop that waits on a program gets 30 s more): "
        "one that does not answer fails `oplab status`, `down`, ... after this long instead of hanging them"))
    demo_timeout_s: float = 180.0

    @field_validator("nats_cluster")
    @classmethod
    def _one_or_three(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("OPLAB_NATS_CLUSTER is 1 (one server) or 3 (a cluster that survives losing one)")
        return value

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def stack_file(self) -> Path:
        """``<home>/stack.json``: what the running stack is (:class:`oplab.stack.StackInfo`), owner-only."""
        return self.home / "stack.json"

"""Settings every service reads (env prefix ``OPLAB_``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from events.catalogue.svc import HEARTBEAT_S
from events.structured_logging import LogSettings


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ServiceSettings(LogSettings):
    """What every service reads from the environment (``OPLAB_*``), its logging's included."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")

    run: str = Field(default="", description="Run id; required (the launcher sets it)")
    instance: str = Field(default_factory=_default_instance)
    home: Path = Field(default=Path(".oplab"), description="State dir for local stores")
    heartbeat_s: float = Field(default=HEARTBEAT_S, gt=0, description=(
        "Seconds between heartbeats; recorded in each, so readers judge this instance gone after a few missed"))
    command_scope: str = Field(default="", pattern=r"^[A-Za-z0-9_-]*$", description=(
        "The lab scope this instance answers commands in (``cmd.<service>.<verb>.<scope>``); empty: "
        "unscoped. A campaign's parallel trial slots share one NATS, each in a scope of its own"))
    ready_file: Path | None = Field(default=None, description=(
        "A file that exists while the service is ready for work, for a container healthcheck "
        "(removed at start, written once ready, removed on the way out)"))

"""TiKV settings (env prefix ``OPLAB_TIKV_``): where PD is, how the lab controls the stores.

``pd_url`` is PD's HTTP API (any member: ``http://pd0:2379``); ``pd_endpoints`` the
gRPC endpoints the KV client starts from (default: ``pd_url``'s host:port, as on a
real PD, which serves both on one port).

``control`` says how faults and mutating tools act on the cluster's processes:

- ``docker`` (compose): through the Docker Engine API (``DOCKER_HOST``), on the
  containers of compose project ``compose_project`` only; the store or PD member is
  the container whose compose service is its name; a partition disconnects it from
  ``network`` (default ``<project>_default``);
- ``supervisor``: through supervisord's XML-RPC (``supervisor_url``), program name =
  target name, signals standing in for the container verbs (KILL; STOP/CONT for
  pause; USR1/USR2 for disconnect/reconnect, which the process must honour: the
  lab's store doubles do). For stores that run as local processes, and for the tests.

``targets`` names the cluster's processes: ``name=address`` pairs (``store-1=127.0.0.1:20161``).
Without it, a store is named after its address's host (``tikv1:20160`` → ``tikv1``, its
compose service) and a PD member by its member name.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from subjects.contract.settings import checked_by, parse_named

SUBJECT_NAME = "tikv"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_targets(spec: str) -> dict[str, str]:
    """``"name=address,…"`` → {name: address}; ValueError on a malformed entry."""
    return parse_named(spec, entry="target", expected="name=host:port",
                       valid=lambda name, address: bool(_NAME.match(name)) and ":" in address)


class TiKVSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_TIKV_", extra="ignore")

    pd_url: str = Field(default="http://pd0:2379", description="PD's HTTP API (any member)")
    pd_endpoints: str = Field(default="", description="PD gRPC endpoints for the KV client (default: pd_url's)")
    control: Literal["docker", "supervisor"] = "docker"
    compose_project: str = Field(default="operator-lab", description="only this project's containers are targets")
    network: str | None = Field(default=None, description="network a partition disconnects (<project>_default)")
    supervisor_url: str = Field(default="", description="XML-RPC URL of the supervisord running the stores")
    targets: Annotated[str, checked_by(parse_targets)] = Field(
        default="", description="name=address pairs of the cluster's processes")
    http_timeout_s: float = Field(default=1.0, gt=0, description="one PD HTTP call")
    probe_timeout_s: float = Field(default=0.5, gt=0, description="one store status probe")
    observe_timeout_s: float = Field(default=2.0, gt=0, description="one whole observation")
    control_timeout_s: float = Field(default=10.0, gt=0, description="one Docker / supervisord call")
    start_deadline_s: float = Field(default=20.0, gt=0, description="how long start_store waits for the store to be up")
    kv_timeout_s: float = Field(default=2.0, gt=0, description="time budget of one KV operation, retries included")

    @field_validator("pd_url")
    @classmethod
    def _check_pd_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"pd_url {value!r}: expected http(s)://host:port")
        return value.rstrip("/")

    @property
    def endpoints(self) -> list[str]:
        if self.pd_endpoints.strip():
            return [e.strip() for e in self.pd_endpoints.split(",") if e.strip()]
        parsed = urlparse(self.pd_url)
        return [f"{parsed.hostname}:{parsed.port or 2379}"]

    @property
    def named_targets(self) -> dict[str, str]:
        return parse_targets(self.targets)

    @property
    def compose_network(self) -> str:
        return self.network or f"{self.compose_project}_default"

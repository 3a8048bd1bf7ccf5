"""``obs.snapshot``: what the monitor saw of the subject at one instant.

The shape is subject-neutral: nodes with a status, the shared backend's health,
and keyed counters against their limits. ``ok=False`` means the observation
itself failed (``error`` says why): an invariant must treat that as blindness,
never as health.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import Payload, utcnow


class NodeView(BaseModel):
    """One node. ``health_ok`` (its own health probe answered OK) and
    ``heartbeat_age_s`` (seconds since its last heartbeat, by the backend's clock)
    say *why* it reads ``status``; ``None`` means not known. ``maintenance`` is
    set while an operator's planned restart of the node is announced (its
    downtime is then no incident)."""

    model_config = ConfigDict(frozen=True)
    node: str
    url: str = ""
    status: Literal["up", "down"]
    last_seen: datetime | None = None
    pid: int | None = None
    detail: str = ""
    health_ok: bool | None = None
    heartbeat_age_s: float | None = None
    maintenance: str | None = None


class BackendView(BaseModel):
    """The shared backend. ``ok`` means it answers reads *and* accepts writes;
    ``writable``/``write_error`` report the write probe (``None``: not probed)."""

    model_config = ConfigDict(frozen=True)
    name: str
    ok: bool
    latency_ms: float | None = None
    error: str | None = None
    info: dict[str, Any] = {}
    writable: bool | None = None
    write_error: str | None = None


class CounterView(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    count: int
    limit: int
    window_s: float
    future_entries: int = 0
    declared_limit: int | None = None
    """The limit the lab's declared policy sets for this key (``limit`` is the one in force)."""


class ObsSnapshot(Payload):
    TYPE = "obs.snapshot"
    subject: str
    ok: bool
    error: str | None = None
    observed_at: datetime = Field(default_factory=utcnow)
    duration_ms: float = 0.0
    nodes: list[NodeView] = []
    backend: BackendView | None = None
    counters: list[CounterView] = []

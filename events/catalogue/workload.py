"""``workload.stats``: what the load generator's clients experienced in one interval."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from events.envelope import Payload


class KeyStats(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    limit: int
    sent: int = 0
    allowed: int = 0
    blocked: int = 0
    errors: int = 0


class NodeKeyStats(BaseModel):
    """One key's requests answered (or failed) by one node in the interval."""

    model_config = ConfigDict(frozen=True)
    key: str
    sent: int = 0
    allowed: int = 0
    blocked: int = 0
    errors: int = 0


class NodeStats(BaseModel):
    """One node's requests in the interval; ``keys`` breaks them down per key
    (what attributes a misbehaving node), empty when the producer does not."""

    model_config = ConfigDict(frozen=True)
    node: str
    sent: int = 0
    allowed: int = 0
    blocked: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    keys: list[NodeKeyStats] = []


class WorkloadStats(Payload):
    TYPE = "workload.stats"
    interval_s: float
    keys: list[KeyStats] = []
    nodes: list[NodeStats] = []
    ended_at: datetime | None = None
    """When the interval ended (the producer's clock); lets a judge ignore stale stats."""

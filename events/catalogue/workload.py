"""``workload.stats``: what the load generator's clients experienced in one interval."""

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


class NodeStats(BaseModel):
    model_config = ConfigDict(frozen=True)
    node: str
    sent: int = 0
    allowed: int = 0
    blocked: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0


class WorkloadStats(Payload):
    TYPE = "workload.stats"
    interval_s: float
    keys: list[KeyStats] = []
    nodes: list[NodeStats] = []

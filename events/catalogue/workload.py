"""``workload.stats``: what the load generator's clients experienced in one interval.

The core is subject-neutral counts: per node and per operation (an operation
type, or the key it was about), each ``sent`` = ``ok`` + ``rejected`` +
``errors``. ``ok`` is a request the subject served, ``rejected`` one it refused
by design (a rate limiter's 429, a write conflict), ``errors`` one it failed
(no answer, a 5xx). Latency percentiles cover answered requests (ok or
rejected); ``None`` when there were none. ``details`` is a JSON object owned by
the subject (typed and validated in its package), e.g. the limits a rate
limiter reported. A producer may report operations only, nodes only, or both;
the interval's totals are :meth:`WorkloadStats.totals` (the operations' when
there are any, else the nodes').

Version 2. Version 1 spoke the rate limiter's words (keys with a limit,
allowed/blocked); :meth:`WorkloadStats.upcast_v1_v2` maps them (keys →
operations, allowed → ok, blocked → rejected, the keys' limits →
``details.limits``).
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from events.envelope import Payload


class Counts(BaseModel):
    """Requests over the interval: ``sent`` = ``ok`` + ``rejected`` + ``errors``; ``p50_ms`` / ``p99_ms``: latency
    percentiles of the answered ones (ok or rejected), None when none was answered."""

    model_config = ConfigDict(frozen=True)
    sent: int = 0
    ok: int = 0
    rejected: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def answered(self) -> int:
        """Requests the subject decided (served or refused by design)."""
        return self.ok + self.rejected


class OperationStats(Counts):
    """One operation (or key) over the interval."""

    name: str


class NodeStats(Counts):
    """One node's requests in the interval; ``operations`` breaks them down (what attributes
    a misbehaving node), empty when the producer does not."""

    node: str
    operations: list[OperationStats] = []

    def operation(self, name: str) -> OperationStats | None:
        return next((o for o in self.operations if o.name == name), None)


class WorkloadStats(Payload):
    """What the load generator's clients saw over one interval (``interval_s`` seconds, as measured), recorded by the
    loadgen service when the subject's workload reports it (every 0.25 s for the rate limiter, else every second, unless
    ``OPLAB_LOADGEN_INTERVAL_S``): counts per operation and per node (see the module docstring)."""

    TYPE = "workload.stats"
    VERSION = 2
    interval_s: float
    operations: list[OperationStats] = []
    nodes: list[NodeStats] = []
    ended_at: datetime | None = None
    """When the interval ended (the producer's clock); lets a judge ignore stale stats."""
    details: dict[str, Any] = {}

    def operation(self, name: str) -> OperationStats | None:
        return next((o for o in self.operations if o.name == name), None)

    def totals(self) -> Counts:
        """The interval's counts as one: the operations' summed when there are any, else the nodes' (a producer
        may report nodes only). Never the two added together, and the operations first: a request counts once in
        its operation but may count on several nodes (the rate limiter's client fails over, so its per-node counts
        are attempts). ``p50_ms`` / ``p99_ms``: the slowest part's, the highest of the parts' percentiles (those
        of parts do not combine into the whole's); None when no part has one. All zero when the interval has
        neither operations nor nodes."""
        parts: list[Counts] = [*self.operations] if self.operations else [*self.nodes]

        def highest(values: list[float | None]) -> float | None:
            return max((v for v in values if v is not None), default=None)

        return Counts(sent=sum(p.sent for p in parts), ok=sum(p.ok for p in parts),
                      rejected=sum(p.rejected for p in parts), errors=sum(p.errors for p in parts),
                      p50_ms=highest([p.p50_ms for p in parts]), p99_ms=highest([p.p99_ms for p in parts]))

    @staticmethod
    def upcast_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
        """v1 → v2: ``keys`` → ``operations`` (``limit`` → ``details.limits``), ``allowed`` → ``ok``,
        ``blocked`` → ``rejected``, per-node ``keys`` → ``operations``. A document that already has
        v2 fields is not a v1 one: refused."""
        if {"operations", "details"} & set(data):
            raise ValueError("a v1 workload.stats has no operations or details: it is mislabelled")
        doc = dict(data)

        def counts(raw: dict[str, Any], name_field: str | None) -> dict[str, Any]:
            out = {k: raw[k] for k in ("sent", "errors", "p50_ms", "p99_ms") if k in raw}
            out["ok"], out["rejected"] = raw.get("allowed", 0), raw.get("blocked", 0)
            if name_field is not None:
                out["name"] = raw.get(name_field)
            return out

        keys = doc.pop("keys", None) or []
        doc["operations"] = [counts(k, "key") for k in keys]
        doc["nodes"] = [{**counts(n, None), "node": n.get("node"),
                         "operations": [counts(k, "key") for k in n.get("keys") or []]}
                        for n in doc.get("nodes") or []]
        limits = {k.get("key"): k["limit"] for k in keys if "limit" in k}
        doc["details"] = {"limits": limits} if limits else {}
        return doc

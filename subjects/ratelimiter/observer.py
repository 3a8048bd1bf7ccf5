"""The rate limiter's observer (the monitor's role): one snapshot per tick, and the invariants.

Observation reads Redis directly (heartbeats, counters, health) and probes each
node's ``/health`` concurrently, through one :class:`RateLimiterCluster`; it is
bounded by ``observe_timeout_s`` and never raises. Each observation also writes
a probe key (bounded by ``write_probe_timeout_s``): the store reads ``ok`` only
if Redis answers *and* accepts writes, so a write-paused or out-of-memory Redis
shows as failing with the reason, while the reads that observation needs (all
read-only, the counters script flagged ``no-writes``) still work. A server that
says in its INFO that it holds writes (``paused_actions``: valkey reports a
``CLIENT PAUSE`` there) needs no probe to wait out its timeout: the probe is
dropped and the write reads ``paused`` at once, so the observation stays as
fast as every other (a paused store is judged at the monitor's cadence, not
the probe's timeout's). Servers that do not say so are caught by the timeout.

The snapshot's neutral core: the nodes (``up``/``down``) and one component,
``redis`` (``up``; ``degraded`` when it answers reads but refuses or stalls
writes; ``down`` when it cannot be read). Everything else — counters against
limits, node process facts, the store's INFO — is in the details
(:class:`~subjects.ratelimiter.details.SnapshotDetails`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from redis.exceptions import RedisError

from events import ComponentView, NodeView, ObsSnapshot, Status
from events.envelope import utcnow
from subjects.contract import Invariant, Observer, observe_within
from subjects.ratelimiter.backend import REDIS_TARGET, WriteProbe, paused_actions
from subjects.ratelimiter.cluster import ClusterRole, RateLimiterCluster, describe_error
from subjects.ratelimiter.details import CounterView, NodeProcess, SnapshotDetails, StoreHealth
from subjects.ratelimiter.invariants import INVARIANT_TYPES
from subjects.ratelimiter.limiter import us_to_datetime
from subjects.ratelimiter.settings import SUBJECT_NAME, RateLimiterSettings


class RateLimiterObserver(ClusterRole, Observer):
    def __init__(self, settings: RateLimiterSettings | None = None, *,
                 cluster: RateLimiterCluster | None = None) -> None:
        super().__init__(settings, cluster=cluster)
        self._invariants = [cls() for cls in INVARIANT_TYPES]

    def invariants(self) -> list[Invariant]:
        return list(self._invariants)

    async def observe(self) -> ObsSnapshot:
        """One snapshot of nodes, Redis and counters. Never raises; failure is ``ok=False``."""
        observed_at = utcnow()
        start = time.perf_counter()

        def failed(error: str) -> ObsSnapshot:
            store = StoreHealth(ok=False, error=error, info={"address": self.cluster.redis_address()})
            return self._snapshot(observed_at, start, ok=False, error=error, store=store)

        return await observe_within(self._observe(observed_at, start), self.cluster.settings.observe_timeout_s,
                                    failed, describe_error)

    async def _observe(self, observed_at: datetime, start: float) -> ObsSnapshot:
        cluster = self.cluster
        probes_task = asyncio.ensure_future(cluster.probe_all())
        write_task = asyncio.ensure_future(cluster.backend.write_probe())
        try:
            ping_ms, info, (now_us, counters), (_, records) = await asyncio.gather(
                cluster.store.ping_ms(), cluster.backend.info(), cluster.store.counters(), cluster.store.nodes()
            )
        except (RedisError, OSError) as exc:
            probes, _ = await asyncio.gather(probes_task, write_task)
            error = f"redis unreachable at {cluster.redis_address()}: {describe_error(exc)}"
            store = StoreHealth(ok=False, error=describe_error(exc),
                                info={"address": cluster.redis_address(), "reads": "failed"})
            views = [cluster.view(node, None, probes[node]) for node in cluster.node_ids(None)]
            return self._snapshot(observed_at, start, ok=False, error=error, store=store, views=views)
        except BaseException:
            probes_task.cancel()
            write_task.cancel()
            raise
        held = paused_actions(info)
        if held in ("write", "all") and not write_task.done():
            write_task.cancel()  # it would only wait out its timeout
            probes = await probes_task
            write = WriteProbe("paused", 0.0, f"writes held by the server (CLIENT PAUSE {held})")
        else:
            probes, write = await asyncio.gather(probes_task, write_task)
        views = [cluster.view(node, records.get(node), probes[node]) for node in cluster.node_ids(records)]
        store = StoreHealth(ok=write.ok, latency_ms=round(ping_ms, 3), error=write.error, writable=write.ok,
                            write_error=write.error,
                            info={"address": cluster.redis_address(), **info, "reads": "ok",
                                  "server_time": us_to_datetime(now_us).isoformat(),
                                  "write_probe": write.kind, "write_ms": write.latency_ms})
        settings = cluster.settings
        counters = [CounterView(key=c.key, count=c.count, limit=c.limit, window_s=settings.window_s,
                                future_entries=c.future_entries, declared_limit=settings.policy.get(c.key))
                    for c in counters]
        return self._snapshot(observed_at, start, ok=True, store=store, views=views, counters=counters)

    def _snapshot(self, observed_at: datetime, start: float, *, ok: bool, store: StoreHealth,
                  error: str | None = None, views: list[tuple[NodeView, NodeProcess]] | None = None,
                  counters: list[CounterView] | None = None) -> ObsSnapshot:
        views = views or []
        details = SnapshotDetails(counters=counters or [], nodes={v.node: facts for v, facts in views},
                                  backend=store)
        return ObsSnapshot(
            subject=SUBJECT_NAME, ok=ok, error=error, observed_at=observed_at,
            duration_ms=round((time.perf_counter() - start) * 1000, 3),
            nodes=[v for v, _ in views],
            components=[_store_component(store)],
            details=details.model_dump(mode="json"),
        )


def _store_component(store: StoreHealth) -> ComponentView:
    """Redis in the neutral vocabulary: ``degraded`` if it answers reads but refuses or stalls writes,
    ``down`` if it cannot be read, ``unknown`` if the observation gave up before reaching it."""
    reads = store.info.get("reads")
    status: Status
    if store.ok:
        status, state = "up", ""
    elif reads == "ok":
        status, state = "degraded", "writes failing"
    elif reads == "failed":
        status, state = "down", "unreachable"
    else:
        status, state = "unknown", "not observed"
    return ComponentView(name=REDIS_TARGET, role="shared backend", status=status, state=state,
                         address=str(store.info.get("address") or ""), latency_ms=store.latency_ms,
                         detail=store.write_error or store.error or "")

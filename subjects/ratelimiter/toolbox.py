"""The rate limiter's toolbox (the agent's role): typed tools, playbooks, a snapshot summary, secrets.

The summary a model gets of a snapshot is the neutral core (nodes, components
that are not up) plus the shared store's write health and only the keys that
need attention: at or over their limit, holding future-dated entries, or with a
limit in force other than the declared one (the rest are counted).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from events import ObsSnapshot
from subjects.contract import ListedToolbox
from subjects.ratelimiter.cluster import ClusterRole, RateLimiterCluster
from subjects.ratelimiter.details import snapshot_details
from subjects.ratelimiter.playbooks import playbooks
from subjects.ratelimiter.settings import RateLimiterSettings
from subjects.ratelimiter.tools import TOOL_TYPES

DESCRIPTION = (
    "A distributed rate limiter: several stateless HTTP nodes answer 'may this client make a request "
    "now?' for named keys (users, API routes, tenants). Decisions are made atomically in a shared "
    "Redis with a sliding-window log per key (one entry per admitted request, timed by the Redis "
    "server clock), against per-key limits per window from a declared policy. Each node reports "
    "liveness through heartbeats in Redis and serves /health, metrics and a management API; the "
    "node processes run under a process supervisor. Healthy means: every node up, every key's "
    "window at or below its limit, and the shared store reachable."
)


class RateLimiterToolbox(ClusterRole, ListedToolbox):
    description = DESCRIPTION

    def __init__(self, settings: RateLimiterSettings | None = None, *,
                 cluster: RateLimiterCluster | None = None) -> None:
        ClusterRole.__init__(self, settings, cluster=cluster)  # it does not call super(): each base in turn
        ListedToolbox.__init__(self, [tool(self.cluster) for tool in TOOL_TYPES], playbooks())

    def summarize_details(self, snapshot: ObsSnapshot) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        details = snapshot_details(snapshot)
        backend = details.backend
        if backend is not None and not backend.ok:
            doc["store"] = {"ok": False, **({"error": backend.error} if backend.error else {}),
                            **({"write_error": backend.write_error} if backend.write_error else {})}
        if details.counters:
            hot = [c for c in details.counters if c.count >= c.limit or c.future_entries
                   or (c.declared_limit is not None and c.declared_limit != c.limit)]
            doc["counters_at_or_over_limit"] = [
                {"key": c.key, "count": c.count, "limit": c.limit,
                 **({"declared_limit": c.declared_limit} if c.declared_limit not in (None, c.limit) else {}),
                 **({"future_entries": c.future_entries} if c.future_entries else {})} for c in hot]
            doc["counters_within_limit"] = len(details.counters) - len(hot)
        return doc

    def secrets(self) -> list[str]:
        """The passwords in the supervisor's and Redis's URLs."""
        settings = self.cluster.settings
        return [p for url in (settings.supervisor_url, settings.redis_url) if (p := urlparse(url).password)]

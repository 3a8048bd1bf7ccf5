"""Realistic client traffic on the rate limiter, doubling as a black-box prober.

Each policy key gets a steady arrival rate relative to its limit: by default
the keys cycle through 80%, 65%, 90%, 400% and 75% of their limit per window,
so most traffic is admitted and the 400% key is routinely blocked, as a real
API's abusive client would be. Arrivals are evenly spaced with ±20% jitter.

The over-rate key doubles as a black-box probe of enforcement: every node
receives a share of it, so every correct node blocks part of that share. A node
that fails open blocks none of its share while clients get far more than the
limit through, which is how ``node_over_admitting`` sees and attributes it.
Why 4x: attribution within a fraction of a second rests on a node's newest
few decisions, and a correct node must not block none of them by chance. At
4x a correct node blocks ~75% of its share (~62% while another node fails
open), so it blocks none of 8 with p ≈ 0.04%, and each node decides ~20 checks
of the key per second, so 8 take ~0.4 s; with one fail-open node among three
clients get ~2.3x the limit. (At 2.5x, the previous choice, those are 40%,
p ≈ 1.7%, and 12.5 checks per second: attribution needed whole seconds.)

Stats come every ``stats_interval_s`` (0.25 s, ``OPLAB_RL_STATS_INTERVAL_S``)
unless the caller asks for another interval: short intervals let the monitor
see a fault within a quarter second of its start, and the invariants judge
sliding windows of them for sample size (:mod:`subjects.ratelimiter.invariants`).

Requests go round-robin over the nodes; a connection error or timeout counts
as an error against that node and the request fails over to the next node
(each node tried at most once). A key's request counts as an error only when
every node failed. Concurrency is bounded by a semaphore over one aiohttp
session (keep-alive; a stale pooled connection is just another failover).
Each interval the caller receives a :class:`~events.WorkloadStats` in the neutral
vocabulary: one operation per key and per node, ``ok`` = allowed (200),
``rejected`` = blocked (429, the limiter doing its job), ``errors`` = no node
could decide; per node, the same counts per key (``NodeStats.operations``);
the limits the nodes reported in ``details.limits``
(:class:`~subjects.ratelimiter.details.WorkloadDetails`); stamped with the
interval's end (``ended_at``). Per-key counts are logical requests (after
failover); per-node counts are attempts, so for every key the nodes' ok and
rejected add up to the key's, and their errors are at least the key's.
Latency percentiles cover decided checks (200/429); failures are counted, not timed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from itertools import count

import aiohttp

from events import NodeStats, OperationStats, WorkloadStats
from events.envelope import utcnow
from subjects.contract import StatsSink, Workload
from subjects.contract.traffic import Pacer, latency_percentiles
from subjects.ratelimiter.details import WorkloadDetails
from subjects.ratelimiter.settings import RateLimiterSettings

log = logging.getLogger(__name__)

DEFAULT_FACTORS = (0.8, 0.65, 0.9, 4.0, 0.75)


@dataclass
class _Counts:
    sent: int = 0
    allowed: int = 0
    blocked: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def operation(self, name: str) -> OperationStats:
        return OperationStats(name=name, sent=self.sent, ok=self.allowed, rejected=self.blocked,
                              errors=self.errors, **latency_percentiles(self.latencies_ms))


@dataclass
class _KeyCounts(_Counts):
    limit: int = 0


@dataclass
class _NodeCounts(_Counts):
    keys: dict[str, _Counts] = field(default_factory=dict)

    def key(self, key: str) -> _Counts:
        counts = self.keys.get(key)
        if counts is None:
            counts = self.keys[key] = _Counts()
        return counts


class RateLimiterWorkload(Workload):
    """Steady traffic over the policy keys, spread over the nodes with failover."""

    def __init__(
        self,
        settings: RateLimiterSettings | None = None,
        factors: dict[str, float] | None = None,
        concurrency: int = 16,
        request_timeout_s: float = 1.0,
        seed: int | None = None,
    ) -> None:
        """``settings``: default from the environment; ``factors``: key -> arrival rate as a fraction
        of its limit per window (default: see module)."""
        self.settings = settings = settings if settings is not None else RateLimiterSettings()
        policy = settings.policy
        self.factors = factors if factors is not None else {
            key: DEFAULT_FACTORS[i % len(DEFAULT_FACTORS)] for i, key in enumerate(policy)
        }
        unknown = set(self.factors) - set(policy)
        if unknown:
            raise ValueError(f"workload keys outside the policy: {sorted(unknown)}")
        self.nodes = settings.node_urls
        if not self.nodes:
            raise ValueError("no nodes configured")
        self.concurrency = concurrency
        self.request_timeout_s = request_timeout_s
        self._rng = random.Random(seed if seed is not None else settings.seed)
        self._rr = count()
        self._keys: dict[str, _KeyCounts] = {}
        self._node_counts: dict[str, _NodeCounts] = {}
        self._reset_counts()

    def rates(self) -> dict[str, float]:
        """Requests per second per key."""
        return {k: f * self.settings.policy[k] / self.settings.window_s for k, f in self.factors.items() if f > 0}

    def _reset_counts(self) -> None:
        previous = self._keys
        self._keys = {k: _KeyCounts(limit=previous[k].limit if k in previous else self.settings.policy[k])
                      for k in self.factors}
        self._node_counts = {n: _NodeCounts() for n in self.nodes}

    def _snapshot(self, interval_s: float) -> WorkloadStats:
        nodes = []
        for node, c in self._node_counts.items():
            whole = c.operation(node)
            nodes.append(NodeStats(node=node, **whole.model_dump(exclude={"name"}),
                                   operations=[kc.operation(k) for k, kc in c.keys.items()]))
        stats = WorkloadStats(
            interval_s=round(interval_s, 3),
            operations=[c.operation(k) for k, c in self._keys.items()],
            nodes=nodes,
            ended_at=utcnow(),
            details=WorkloadDetails(limits={k: c.limit for k, c in self._keys.items()}).model_dump(),
        )
        self._reset_counts()
        return stats

    async def _send(self, session: aiohttp.ClientSession, key: str) -> None:
        """One logical request with failover. Counted when its outcome is known, so that every
        interval's stats add up (sent == allowed + blocked + errors, per key and per node)."""
        node_ids = list(self.nodes)
        first = next(self._rr) % len(node_ids)
        loop = asyncio.get_running_loop()
        for attempt in range(len(node_ids)):
            node = node_ids[(first + attempt) % len(node_ids)]
            start = loop.time()
            try:
                async with session.post(f"{self.nodes[node]}/check", json={"key": key}) as resp:
                    body = await resp.json(content_type=None)
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError, ValueError, OSError):
                self._node_error(node, key)
                continue
            if status not in (200, 429) or not isinstance(body, dict):
                self._node_error(node, key)  # the node answered but could not decide (e.g. 503: redis down)
                continue
            per_node, counts = self._node_counts[node], self._keys[key]
            node_key = per_node.key(key)
            per_node.sent += 1
            node_key.sent += 1
            counts.sent += 1
            latency_ms = (loop.time() - start) * 1000
            per_node.latencies_ms.append(latency_ms)
            counts.latencies_ms.append(latency_ms)
            if isinstance(body.get("limit"), int):
                counts.limit = body["limit"]
            outcome = "allowed" if body.get("allowed") else "blocked"
            for c in (per_node, node_key, counts):
                setattr(c, outcome, getattr(c, outcome) + 1)
            return
        self._keys[key].sent += 1
        self._keys[key].errors += 1

    def _node_error(self, node: str, key: str) -> None:
        per_node = self._node_counts[node]
        node_key = per_node.key(key)
        for c in (per_node, node_key):
            c.sent += 1
            c.errors += 1

    async def run(self, stop: asyncio.Event, on_stats: StatsSink, interval_s: float | None = None) -> None:
        """Send traffic until ``stop`` is set; ``on_stats`` once per interval (and once at the end).
        ``interval_s`` unset: the settings' ``stats_interval_s``."""
        if interval_s is None:
            interval_s = self.settings.stats_interval_s
        pacer: Pacer[str] = Pacer(stop, rng=self._rng)  # a stall skips what it missed (see the pacer)
        start = pacer.now()
        for key, rate in self.rates().items():  # the first sends staggered, so keys do not all fire together
            pacer.add(key, rate, jitter=0.2, at=start + self._rng.uniform(0, 1.0 / rate))
        semaphore = asyncio.Semaphore(self.concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        interval_start = start
        next_report = start + interval_s
        self._reset_counts()

        async def one(key: str) -> None:
            try:
                await self._send(session, key)
            finally:
                semaphore.release()

        timeout = aiohttp.ClientTimeout(total=self.request_timeout_s)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            while not stop.is_set():
                now = pacer.now()
                if now >= next_report:
                    await on_stats(self._snapshot(now - interval_start))
                    interval_start, next_report = now, max(next_report + interval_s, now)
                    continue
                key = await pacer.next(until=next_report)
                if key is None:  # a report is due, or stopped
                    continue
                await semaphore.acquire()
                task = asyncio.create_task(one(key))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        await on_stats(self._snapshot(pacer.now() - interval_start))

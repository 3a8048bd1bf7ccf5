"""Real raw-KV traffic on TiKV through a real client (``tikv-python``), doubling as a correctness prober.

Every ``1/rate`` seconds (±20 % jitter) the workload either writes a new key with a
value it remembers (``put``) or reads back one of its acknowledged writes (``get``), so:

- every acknowledged write is read back (oldest first, once it is ``verify_after_s``
  old): a read that finds it missing or different is a **lost write**, counted for the
  rest of the run (``details.lost_total``, cumulative: data loss never heals) with the
  key;
- a put whose outcome the client cannot know (``UndeterminedError``: the store went
  away mid-request) is neither acknowledged nor lost: it is counted ``undetermined``
  and an error, and never read back as if it had been written;
- keys are ``<bucket>/<run>/<n>`` with ``bucket`` 0000-0999, spread over the key space
  so that every region sees traffic.

Per-store attribution: the client does not say which store served a request, so each
interval the workload asks PD which store leads which region and attributes every
operation to the leader of its key's region (``unknown`` when PD does not answer).
Operations count per interval as ``put``/``get`` with ok/errors and p50/p99 of the
answered ones; failed ones are counted, not timed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import tikv
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import NodeStats, OperationStats, WorkloadStats
from subjects.contract import StatsSink, Workload
from subjects.contract.traffic import Pacer, latency_percentiles
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.details import WorkloadDetails
from subjects.tikv.pd import PDUnavailable
from subjects.tikv.settings import TiKVSettings

log = logging.getLogger(__name__)

UNKNOWN_STORE = "unknown"


class ProberSettings(BaseSettings):
    """``OPLAB_TIKV_PROBER_*``: the traffic's shape."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_TIKV_PROBER_", extra="ignore", populate_by_name=True)
    rate: float = 50.0
    read_ratio: float = 0.5
    verify_after_s: float = 1.0
    concurrency: int = 8
    run: str = Field(default="", validation_alias=AliasChoices("OPLAB_TIKV_PROBER_RUN", "OPLAB_RUN"),
                     description="the run the prober's keys belong to")


@dataclass
class _Counts:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def stats(self) -> dict[str, float | int | None]:
        return {"sent": self.sent, "ok": self.ok, "errors": self.errors, **latency_percentiles(self.latencies_ms)}


@dataclass
class _Interval:
    ops: dict[str, _Counts] = field(default_factory=lambda: {"put": _Counts(), "get": _Counts()})
    stores: dict[str, dict[str, _Counts]] = field(default_factory=dict)

    def count(self, op: str, store: str, ok: bool, latency_ms: float | None) -> None:
        for counts in (self.ops[op], self.stores.setdefault(store, {}).setdefault(op, _Counts())):
            counts.sent += 1
            if ok:
                counts.ok += 1
                if latency_ms is not None:
                    counts.latencies_ms.append(latency_ms)
            else:
                counts.errors += 1


class TiKVWorkload(Workload):
    def __init__(self, settings: TiKVSettings | None = None, prober: ProberSettings | None = None,
                 seed: int | None = None) -> None:
        self.settings = settings if settings is not None else TiKVSettings()
        self.prober = prober if prober is not None else ProberSettings()
        self.cluster = TiKVCluster(self.settings)
        self._rng = random.Random(seed)
        self._run = self.prober.run or f"w{int(time.time())}"
        self._seq = 0
        self._acked: deque[tuple[bytes, bytes, float]] = deque()
        self._leaders: list[tuple[bytes, bytes, str]] = []  # (start, end, store name) from PD
        self.acked_total = self.verified_total = self.lost_total = self.undetermined_total = 0
        self.lost_keys: list[str] = []
        self._interval = _Interval()

    async def close(self) -> None:
        await self.cluster.close()

    # -- attribution ----------------------------------------------------------------------

    async def _refresh_leaders(self) -> None:
        try:
            stores = await self.cluster.stores()
            by_id = {s.store.id: name for name, s in stores.items()}
            regions = await self.cluster.pd.regions()
        except PDUnavailable as exc:
            log.debug("leaders unknown this interval", extra={"error": str(exc)})
            return
        self._leaders = [(bytes.fromhex(r.start_key), bytes.fromhex(r.end_key),
                          by_id.get(r.leader.store_id, UNKNOWN_STORE) if r.leader else UNKNOWN_STORE)
                         for r in regions.regions]

    def _store_of(self, key: bytes) -> str:
        for start, end, store in self._leaders:
            if start <= key and (not end or key < end):
                return store
        return UNKNOWN_STORE

    # -- one operation --------------------------------------------------------------------------

    async def _put(self, client: tikv.AsyncRawClient) -> None:
        self._seq += 1
        key = f"{self._rng.randrange(1000):04d}/{self._run}/{self._seq}".encode()
        value = f"v{self._seq}".encode()
        started = time.perf_counter()
        try:
            await client.put(key, value)
        except tikv.UndeterminedError:
            self.undetermined_total += 1
            self._interval.count("put", self._store_of(key), False, None)
            return
        except tikv.TiKVError:
            self._interval.count("put", self._store_of(key), False, None)
            return
        self.acked_total += 1
        self._acked.append((key, value, time.monotonic()))
        self._interval.count("put", self._store_of(key), True, (time.perf_counter() - started) * 1000)

    async def _get(self, client: tikv.AsyncRawClient) -> None:
        key, value, _ = self._acked.popleft()
        started = time.perf_counter()
        try:
            found = await client.get(key)
        except tikv.TiKVError:
            self._acked.appendleft((key, value, time.monotonic()))  # not verified: try it again later
            self._interval.count("get", self._store_of(key), False, None)
            return
        self.verified_total += 1
        if found != value:
            self.lost_total += 1
            self.lost_keys = [*self.lost_keys, key.decode()][-20:]
            log.error("acknowledged write lost",
                      extra={"key": key.decode(), "expected": repr(value), "found": repr(found)})
        self._interval.count("get", self._store_of(key), True, (time.perf_counter() - started) * 1000)

    def _next_op(self) -> str:
        ready = bool(self._acked) and time.monotonic() - self._acked[0][2] >= self.prober.verify_after_s
        return "get" if ready and self._rng.random() < self.prober.read_ratio else "put"

    # -- the loop --------------------------------------------------------------------------------

    def _stats(self, interval_s: float) -> WorkloadStats:
        interval, self._interval = self._interval, _Interval()
        nodes = []
        for store, ops in sorted(interval.stores.items()):
            whole = _Counts()
            for counts in ops.values():
                whole.sent += counts.sent
                whole.ok += counts.ok
                whole.errors += counts.errors
                whole.latencies_ms += counts.latencies_ms
            nodes.append(NodeStats(node=store, **whole.stats(),
                                   operations=[OperationStats(name=op, **c.stats()) for op, c in ops.items()]))
        details = WorkloadDetails(acked_total=self.acked_total, verified_total=self.verified_total,
                                  lost_total=self.lost_total, lost_keys=self.lost_keys,
                                  undetermined_total=self.undetermined_total)
        return WorkloadStats(interval_s=round(interval_s, 3), ended_at=datetime.now(UTC), nodes=nodes,
                             operations=[OperationStats(name=op, **c.stats()) for op, c in interval.ops.items()],
                             details=details.model_dump(mode="json"))

    async def run(self, stop: asyncio.Event, on_stats: StatsSink, interval_s: float = 1.0) -> None:
        client = tikv.AsyncRawClient(self.settings.endpoints, timeout=self.settings.kv_timeout_s)
        semaphore = asyncio.Semaphore(self.prober.concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        pacer: Pacer[str] = Pacer(stop, rng=self._rng)  # a stall skips what it missed (see the pacer)
        await self._refresh_leaders()
        interval_start = next_report = pacer.now()
        next_report += interval_s
        pacer.add("op", self.prober.rate, jitter=0.2)

        async def one(op: str) -> None:
            try:
                await (self._put(client) if op == "put" else self._get(client))
            finally:
                semaphore.release()

        try:
            while not stop.is_set():
                now = pacer.now()
                if now >= next_report:
                    await on_stats(self._stats(now - interval_start))
                    interval_start, next_report = now, max(next_report + interval_s, now)
                    await self._refresh_leaders()
                    continue
                if await pacer.next(until=next_report) is None:  # a report is due, or stopped
                    continue
                await semaphore.acquire()
                task = asyncio.create_task(one(self._next_op()))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        finally:
            await client.close()
        await on_stats(self._stats(pacer.now() - interval_start))

"""The TiKV prober: real raw-KV traffic through the real client, attributed to stores, checking that every
acknowledged write reads back."""

from __future__ import annotations

import asyncio
import urllib.request

from events import WorkloadStats
from subjects.tikv.details import workload_details
from subjects.tikv.workload import ProberSettings, TiKVWorkload
from tests.fakes.tikv import TiKVDouble
from tests.subjects.tikv.conftest import settings_for


async def run_for(workload: TiKVWorkload, intervals: int) -> list[WorkloadStats]:
    stats: list[WorkloadStats] = []
    enough = asyncio.Event()

    async def sink(s: WorkloadStats) -> None:
        stats.append(s)
        if len(stats) >= intervals:
            enough.set()

    stop = asyncio.Event()
    task = asyncio.create_task(workload.run(stop, sink, 0.5))
    try:
        await asyncio.wait_for(enough.wait(), 15)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await workload.close()
    return stats


async def test_traffic_reads_back_every_acknowledged_write_and_is_attributed_to_stores(double: TiKVDouble) -> None:
    workload = TiKVWorkload(settings_for(double), ProberSettings(rate=80, verify_after_s=0.2, run="t1"), seed=7)
    stats = await run_for(workload, 6)
    ops = {o.name: o for s in stats for o in s.operations if o.sent}
    assert {"put", "get"} <= set(ops)
    total = {name: sum(o.sent for s in stats for o in s.operations if o.name == name) for name in ("put", "get")}
    errors = sum(o.errors for s in stats for o in s.operations)
    assert total["put"] > 20 and total["get"] > 10 and errors == 0
    for s in stats:
        for o in s.operations:
            assert o.sent == o.ok + o.rejected + o.errors
    stores = {n.node for s in stats for n in s.nodes}
    assert stores <= {"store-1", "store-2", "store-3"} and stores, stores
    last = workload_details(stats[-1])
    assert last.acked_total == total["put"] and last.verified_total == total["get"] and last.lost_total == 0
    answered = [o for s in stats for o in s.operations if o.ok]
    assert all(o.p50_ms is not None and o.p99_ms >= o.p50_ms for o in answered)  # type: ignore[operator]


def _drop(double: TiKVDouble, on: bool) -> None:
    for store in double.stores:
        request = urllib.request.Request(f"http://{store.status_address}/admin/drop-acked-writes",
                                         method="PUT" if on else "DELETE")
        urllib.request.urlopen(request, timeout=2).close()


async def test_an_acknowledged_write_that_does_not_read_back_is_a_lost_write(double: TiKVDouble) -> None:
    """The store double acknowledges puts it never stores: the prober must say so, and keep saying it."""
    _drop(double, True)
    try:
        workload = TiKVWorkload(settings_for(double), ProberSettings(rate=80, verify_after_s=0.2, run="t2"), seed=3)
        stats = await run_for(workload, 5)
    finally:
        _drop(double, False)
    details = [workload_details(s) for s in stats]
    lost = details[-1]
    assert lost.lost_total > 0 and lost.lost_total == lost.verified_total  # every one of them is gone
    assert lost.lost_keys and all("/t2/" in k for k in lost.lost_keys)
    assert [d.lost_total for d in details] == sorted(d.lost_total for d in details)  # cumulative: never heals

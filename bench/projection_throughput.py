"""Ticket log throughput: publish, live projection, replay. Prints figures and ratios to targets.

    .venv/bin/python bench/projection_throughput.py [--events 100000] [--wave 500] [--repeat 3]
    .venv/bin/python bench/projection_throughput.py --events 1000000     # the 1M rebuild

Starts its own nats-server (JetStream in a temp dir) and measures:

1. publish: ``Bus.publish_batch`` of the first N/2 ticket events (lifecycles of
   8 events, a wave of ``--wave`` tickets at a time, interleaved), nobody consuming;
2. the real projector (``python -m services.projector``, SQLite, its own process)
   catching up on them;
3. live: the other N/2 published while the projector follows: published *and*
   folded, from the first publish until its view tracks the last sequence
   (target: bus >= 10,000 events/s sustained);
4. rebuild, the headline: the whole log re-projected from sequence 1 into a fresh SQLite view by
   ``catch_up`` (a reader process receives, the rebuilding process decodes and folds, one
   transaction per batch), in a fresh process as ``oplab projections rebuild`` would run it,
   ``--repeat`` times (best and median). Targets (issue #11): >= 50,000 events/s; 1,000,000
   events in <= 30 s with bounded memory: peak RSS of the rebuilding process and of its reader;
5. breakdown: the reader process alone (NATS, no decode), replay in this process with a no-op
   handler (NATS + decode), and the fold alone, from memory into a fresh SQLite view (no NATS).

Above 200,000 events sections 2 and 3 are skipped and the events are built chunk by chunk (the
projector sections need them all in memory); section 5 folds a sample of 200,000.

Not a test: it prints, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from events import (  # noqa: E402
    Event,
    TicketActionExecuted,
    TicketActionRequested,
    TicketClaimed,
    TicketDiagnosed,
    TicketOpened,
    TicketResolved,
    TicketVerified,
    new_run_id,
)
from events.bus import Bus  # noqa: E402
from events.envelope import Payload, utcnow  # noqa: E402
from events.raw_reader import read_stored  # noqa: E402
from events.replay import Delivered  # noqa: E402
from events.settings import BusSettings  # noqa: E402
from events.subjects import ALL_EVENTS  # noqa: E402
from oplab.infra import start_nats  # noqa: E402
from projections.ticket_log import (  # noqa: E402
    TicketLogFeeder,
    TicketLogProjection,
    TicketLogSettings,
    catch_up,
    open_ticket_log,
)
from services.projector.service import tune_gc  # noqa: E402

TARGET_BUS = 10_000
TARGET_PROJECTOR = 20_000  # target: the projector's catch-up
TARGET_REPLAY = 50_000  # issue #11: a rebuild's replay + fold
TARGET_MILLION_S = 30.0  # issue #11: a 1,000,000-event log rebuilt in <= 30 s
CHUNK = 1000
IN_MEMORY_MAX = 200_000  # above: events built chunk by chunk, projector sections skipped


def lifecycle(tid: str) -> list[Payload]:
    now = utcnow()
    return [
        TicketOpened(ticket_id=tid, invariant="node_down", entity="node-2", subject="ratelimiter",
                     summary="node-2 is down", evidence={"last_seen_s": 4.2}, first_seen=now),
        TicketClaimed(ticket_id=tid, agent="agent-1", policy="rules", lease_until=now + timedelta(seconds=30)),
        TicketDiagnosed(ticket_id=tid, hypothesis="node-2 process is not running"),
        TicketActionRequested(ticket_id=tid, action_id="x1", tool="restart_node", args={"node": "node-2"}),
        TicketActionExecuted(ticket_id=tid, action_id="x1", tool="restart_node", args={"node": "node-2"},
                             ok=True, result="started"),
        TicketVerified(ticket_id=tid, evidence={"cleared": True}),
        TicketDiagnosed(ticket_id=tid, hypothesis="confirmed: node-2 restarted"),
        TicketResolved(ticket_id=tid, by="agent", agent="agent-1"),
    ]


def build_events(bus: Bus, run: str, total: int, wave: int, first_ticket: int = 0) -> list[Event]:
    events: list[Event] = []
    n = first_ticket
    while len(events) < total:
        scripts = [lifecycle(f"tk-{n + i:010x}") for i in range(wave)]
        n += wave
        for step in range(8):
            events += [bus.event(s[step], run=run) for s in scripts]
    return events[:total]


def event_chunks(bus: Bus, run: str, total: int, wave: int) -> Iterator[list[Event]]:
    """The same events as :func:`build_events`, ``CHUNK`` at a time (memory stays flat)."""
    n, made = 0, 0
    while made < total:
        scripts = [lifecycle(f"tk-{n + i:010x}") for i in range(wave)]
        n += wave
        for step in range(8):
            for i in range(0, wave, CHUNK):
                chunk = [bus.event(s[step], run=run) for s in scripts[i:i + CHUNK]][:total - made]
                made += len(chunk)
                if chunk:
                    yield chunk


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def line(name: str, n: int, seconds: float, target: int | None = None) -> None:
    r = rate(n, seconds)
    ratio = f"  {r / target:5.2f}x target ({target:,}/s)" if target else ""
    print(f"  {name:<34} {n:>9,} events in {seconds:7.2f} s = {r:>9,.0f} ev/s{ratio}")


def start_projector(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.projector"], cwd=REPO, env=env)


async def wait_tracked(view_path: Path, seq: int, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Poll the projector's view until it tracks ``seq``; returns the monotonic time it did."""
    settings = TicketLogSettings(ticketlog_url=f"sqlite:///{view_path}")
    view = open_ticket_log(settings)
    deadline = time.monotonic() + timeout
    try:
        while view.tracked() < seq:
            if proc.poll() is not None:
                raise SystemExit(f"projector exited {proc.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit(f"projector did not reach seq {seq} in {timeout}s (at {view.tracked()})")
            await asyncio.sleep(0.005)
        return time.monotonic()
    finally:
        view.close()


async def publish_all(bus: Bus, events: list[Event]) -> tuple[int, float]:
    """Publish in pipelined chunks; returns (last sequence, seconds)."""
    start = time.monotonic()
    seqs = [0]
    for i in range(0, len(events), CHUNK):
        seqs = await bus.publish_batch(events[i:i + CHUNK])
    return seqs[-1], time.monotonic() - start


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


async def rebuild_once(nats_url: str, view_path: Path) -> dict[str, float]:
    """Section 4's measure, run in a fresh process (``--rebuild-child``): catch_up from seq 1."""
    tune_gc()
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="bench-rebuild", ensure_stream=False)
    view = open_ticket_log(TicketLogSettings(ticketlog_url=f"sqlite:///{view_path}"))
    try:
        feeder = TicketLogFeeder(TicketLogProjection(view))
        t = time.monotonic()
        n = await catch_up(bus, feeder)
        seconds = time.monotonic() - t
        # peak memory of the rebuild itself, before this bench reads every row back to count them
        rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_reader = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rows = len(view.dump_rows())
    finally:
        view.close()
        await bus.close()
    return {"events": n, "seconds": seconds, "batches": feeder.batches, "rows": rows,
            "high_water": feeder.high_water, "max_pending": feeder.max_pending,
            "rss_self_kib": rss_self, "rss_reader_kib": rss_reader}


def rebuild_in_fresh_process(nats_url: str, view_path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--rebuild-child", nats_url, str(view_path)],
                         cwd=REPO, check=True, stdout=subprocess.PIPE).stdout
    return dict(json.loads(out.splitlines()[-1]))


async def bench(total: int, wave: int, workdir: Path, repeat: int) -> None:
    server = start_nats(workdir / "nats", die_with_parent=True)  # a bench stopped by a signal leaves nothing
    bus = await Bus.connect(BusSettings(nats_url=server.url), source="bench")
    home = workdir / "home"
    env = dict(os.environ, NATS_URL=server.url, OPLAB_RUN=new_run_id(), OPLAB_HOME=str(home),
               OPLAB_HEARTBEAT_S="60", OPLAB_LOG_LEVEL="WARNING")
    env.pop("OPLAB_TICKETLOG_URL", None)
    view_path = home / "ticketlog.sqlite"
    try:
        run = new_run_id()
        if total > IN_MEMORY_MAX:
            await publish_chunked(bus, run, total, wave, server.url)
        else:
            await publish_and_project(bus, run, total, wave, server.url, env, view_path)
        await rebuild_and_breakdown(bus, workdir, repeat, server.url)
    finally:
        await bus.close()
        server.stop()


async def publish_chunked(bus: Bus, run: str, total: int, wave: int, url: str) -> None:
    print(f"Ticket log throughput: {total:,} ticket events, waves of {wave} (built chunk by chunk)")
    print(f"  (nats {url}; 2 cores; sections 2 and 3 need the events in memory: skipped above {IN_MEMORY_MAX:,})")
    print("1. publish, nobody consuming (building the events not timed)")
    seconds = 0.0
    published = 0
    for chunk in event_chunks(bus, run, total, wave):
        t = time.monotonic()
        await bus.publish_batch(chunk)
        seconds += time.monotonic() - t
        published += len(chunk)
    line("publish_batch", published, seconds, TARGET_BUS)


async def publish_and_project(bus: Bus, run: str, total: int, wave: int, url: str, env: dict[str, str],
                              view_path: Path) -> None:
    t0 = time.perf_counter()
    first, second = (build_events(bus, run, total // 2, wave),
                     build_events(bus, run, total - total // 2, wave, first_ticket=total))
    build_s = time.perf_counter() - t0
    gc.collect()
    gc.freeze()  # the prebuilt events are not garbage: keep the collector off them
    tickets = len({e.data.ticket_id for e in (*first, *second)})  # type: ignore[attr-defined]
    print(f"Ticket log throughput: {total:,} ticket events, {tickets:,} tickets, waves of {wave}")
    print(f"  (built the events in {build_s:.2f} s; nats {url}; targets from docs/architecture.md, 2 cores)")

    print("1. publish, nobody consuming")
    last, seconds = await publish_all(bus, first)
    line("publish_batch", len(first), seconds, TARGET_BUS)

    print("2. projector process (python -m services.projector, SQLite) catching up from seq 1")
    projector = start_projector(env)
    try:
        await follow_projector(bus, projector, first, second, last, view_path)
    finally:
        if projector.poll() is None:
            projector.kill()
    del first, second
    gc.unfreeze()
    gc.collect()


async def follow_projector(bus: Bus, projector: subprocess.Popen[bytes], first: list[Event],
                           second: list[Event], last: int, view_path: Path) -> None:
    """Sections 2 and 3: the projector catching up on ``first``, then following ``second`` live."""
    started = await wait_tracked(view_path, 1, projector, 30)
    done = await wait_tracked(view_path, last, projector, 300)
    line("catch-up after its first commit", len(first), done - started, TARGET_PROJECTOR)

    print("3. publish while the projector follows live (same 2 cores)")
    start = time.monotonic()
    last, seconds = await publish_all(bus, second)
    folded = await wait_tracked(view_path, last, projector, 300)
    line("publish_batch", len(second), seconds, TARGET_BUS)
    line("published + folded", len(second), folded - start, TARGET_BUS)
    print(f"  {'projector lag when publishing ended':<34} {folded - start - seconds:7.2f} s")
    projector.send_signal(signal.SIGTERM)
    print(f"  {'projector exit status on SIGTERM':<34} {projector.wait(30)}")


async def rebuild_and_breakdown(bus: Bus, workdir: Path, repeat: int, url: str) -> None:
    print(f"4. rebuild: the whole log re-projected from seq 1 into a fresh SQLite view (catch_up: reader process +"
          f" decode + fold), in a fresh process, x{repeat}")
    runs = []
    for i in range(repeat):
        result = rebuild_in_fresh_process(url, workdir / f"replay-{i}.sqlite")
        runs.append(result)
        line(f"replay from seq 1 + fold (run {i + 1})", int(result["events"]), result["seconds"], TARGET_REPLAY)
    rates = sorted(rate(int(r["events"]), r["seconds"]) for r in runs)
    best = min(runs, key=lambda r: r["seconds"])
    print(f"  {'best / median':<34} {rates[-1]:>9,.0f} / {statistics.median(rates):,.0f} ev/s"
          f"  {rates[-1] / TARGET_REPLAY:5.2f}x target ({TARGET_REPLAY:,}/s)")
    print(f"  {'':<34} {int(best['batches']):,} transactions, {int(best['rows']):,} rows, feeder buffer high-water "
          f"{int(best['high_water']):,} of {int(best['max_pending']):,}")
    print(f"  {'peak RSS: rebuilding process':<34} {mib(max(int(r['rss_self_kib']) for r in runs)):>9}"
          f"   reader process {mib(max(int(r['rss_reader_kib']) for r in runs))}")
    million_s = best["seconds"] * 1_000_000 / max(int(best["events"]), 1)
    print(f"  {'1,000,000 events at this rate':<34} {million_s:7.2f} s  {TARGET_MILLION_S / million_s:5.2f}x target"
          f" (<= {TARGET_MILLION_S:.0f} s)")

    print("5. where the time goes")
    t = time.monotonic()
    received = 0
    async with read_stored(bus.settings, ALL_EVENTS) as reader:
        async for batch in reader.batches():
            received += len(batch)
    line("reader process only (nats, no decode)", received, time.monotonic() - t)

    delivered: list[Delivered] = []
    count = 0

    async def keep(d: Delivered) -> None:
        nonlocal count
        count += 1
        if len(delivered) < IN_MEMORY_MAX:
            delivered.append(d)

    tune_gc()
    t = time.monotonic()
    await bus.replay(ALL_EVENTS, keep)
    line("replay only (nats + decode)", count, time.monotonic() - t)
    view = open_ticket_log(TicketLogSettings(ticketlog_url=f"sqlite:///{workdir / 'fold.sqlite'}"))
    projection = TicketLogProjection(view)
    t = time.monotonic()
    for i in range(0, len(delivered), 5000):
        projection.process_batch(delivered[i:i + 5000])
    line("fold only (batches of 5000)", len(delivered), time.monotonic() - t)
    view.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--wave", type=int, default=500, help="tickets whose lifecycles interleave")
    parser.add_argument("--repeat", type=int, default=3, help="rebuilds measured in section 4")
    parser.add_argument("--rebuild-child", nargs=2, metavar=("NATS_URL", "VIEW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rebuild_child:
        url, view = args.rebuild_child
        print(json.dumps(asyncio.run(rebuild_once(url, Path(view)))))
        return
    with tempfile.TemporaryDirectory(prefix="oplab-bench-") as tmp:
        asyncio.run(bench(args.events, args.wave, Path(tmp), max(args.repeat, 1)))


if __name__ == "__main__":
    main()

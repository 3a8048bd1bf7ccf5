"""Ticket log throughput: publish, live projection, replay. Prints figures and ratios to DESIGN targets.

    .venv/bin/python bench/projection_throughput.py [--events 100000] [--wave 500]

Starts its own nats-server (JetStream in a temp dir) and measures:

1. publish: ``Bus.publish_batch`` of the first N/2 ticket events (lifecycles of
   8 events, a wave of ``--wave`` tickets at a time, interleaved), nobody consuming;
2. the real projector (``python -m services.projector``, SQLite, its own process)
   catching up on them;
3. live: the other N/2 published while the projector follows: published *and*
   folded, from the first publish until its view tracks the last sequence
   (DESIGN: bus >= 10,000 events/s sustained);
4. replay: the whole log re-projected from sequence 1 into a fresh SQLite view in
   this process (ordered consumer + decode + fold, one transaction per batch)
   (DESIGN: >= 20,000 events/s);
5. breakdown: replay with a no-op handler (NATS + decode only), and the fold
   alone, from memory into a fresh SQLite view (no NATS).

Not a test: it prints, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
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
from events.bus import Bus, Delivered  # noqa: E402
from events.envelope import Payload, utcnow  # noqa: E402
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
TARGET_REPLAY = 20_000
CHUNK = 1000


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


async def bench(total: int, wave: int, workdir: Path) -> None:
    server = start_nats(workdir / "nats")
    bus = await Bus.connect(BusSettings(nats_url=server.url), source="bench")
    home = workdir / "home"
    env = dict(os.environ, NATS_URL=server.url, OPLAB_RUN=new_run_id(), OPLAB_HOME=str(home),
               OPLAB_HEARTBEAT_S="60", OPLAB_LOG_LEVEL="WARNING")
    env.pop("OPLAB_TICKETLOG_URL", None)
    view_path = home / "ticketlog.sqlite"
    projector: subprocess.Popen[bytes] | None = None
    try:
        run = new_run_id()
        t0 = time.perf_counter()
        first, second = (build_events(bus, run, total // 2, wave),
                         build_events(bus, run, total - total // 2, wave, first_ticket=total))
        build_s = time.perf_counter() - t0
        gc.collect()
        gc.freeze()  # the prebuilt events are not garbage: keep the collector off them
        tickets = len({e.data.ticket_id for e in (*first, *second)})  # type: ignore[attr-defined]
        print(f"Ticket log throughput: {total:,} ticket events, {tickets:,} tickets, waves of {wave}")
        print(f"  (built the events in {build_s:.2f} s; nats {server.url}; targets from DESIGN.md, 2 cores)")

        print("1. publish, nobody consuming")
        last, seconds = await publish_all(bus, first)
        line("publish_batch", len(first), seconds, TARGET_BUS)

        print("2. projector process (python -m services.projector, SQLite) catching up from seq 1")
        projector = start_projector(env)
        started = await wait_tracked(view_path, 1, projector, 30)
        done = await wait_tracked(view_path, last, projector, 300)
        line("catch-up after its first commit", len(first), done - started, TARGET_REPLAY)

        print("3. publish while the projector follows live (same 2 cores)")
        start = time.monotonic()
        last, seconds = await publish_all(bus, second)
        folded = await wait_tracked(view_path, last, projector, 300)
        line("publish_batch", len(second), seconds, TARGET_BUS)
        line("published + folded", len(second), folded - start, TARGET_BUS)
        print(f"  {'projector lag when publishing ended':<34} {folded - start - seconds:7.2f} s")
        projector.send_signal(signal.SIGTERM)
        print(f"  {'projector exit status on SIGTERM':<34} {projector.wait(30)}")
        del first, second
        gc.unfreeze()
        gc.collect()

        print("4. the whole run re-projected in this process (GC tuned as in the projector)")
        tune_gc()
        view = open_ticket_log(TicketLogSettings(ticketlog_url=f"sqlite:///{workdir / 'replay.sqlite'}"))
        feeder = TicketLogFeeder(TicketLogProjection(view))
        t = time.monotonic()
        n = await catch_up(bus, feeder)
        line("replay from seq 1 + fold", n, time.monotonic() - t, TARGET_REPLAY)
        print(f"  {'':<34} {feeder.batches:,} transactions, {len(view.list_tickets(limit=None)):,} rows")
        view.close()

        print("5. where the time goes")
        delivered: list[Delivered] = []

        async def keep(d: Delivered) -> None:
            delivered.append(d)

        t = time.monotonic()
        await bus.replay(ALL_EVENTS, keep)
        line("replay only (nats + decode)", len(delivered), time.monotonic() - t)
        view = open_ticket_log(TicketLogSettings(ticketlog_url=f"sqlite:///{workdir / 'fold.sqlite'}"))
        projection = TicketLogProjection(view)
        t = time.monotonic()
        for i in range(0, len(delivered), 5000):
            projection.process_batch(delivered[i:i + 5000])
        line("fold only (batches of 5000)", len(delivered), time.monotonic() - t)
        view.close()
    finally:
        if projector is not None and projector.poll() is None:
            projector.kill()
        await bus.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--wave", type=int, default=500, help="tickets whose lifecycles interleave")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oplab-bench-") as tmp:
        asyncio.run(bench(args.events, args.wave, Path(tmp)))


if __name__ == "__main__":
    main()

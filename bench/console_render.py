"""Console benchmark: fold + render a synthetic run, print throughput, CPU and latency.

Two measurements (figures only; nothing here passes or fails):

1. **burst**: fold N events as fast as possible into a LabView, rendering the
   whole screen whenever 50 ms of wall time passed (what the app's coalescing
   does). Prints events/s and the mean full-screen render time.
2. **paced**: the real :class:`console.app.ConsoleApp` on asyncio, drawing on a
   real urwid raw terminal screen attached to a pseudo-terminal (output read and
   discarded), fed at ``--rate`` events/s for ``--seconds``. Prints the CPU use of
   this process as % of one core, and the event-to-screen latency (time from
   an event being folded to the end of the first draw that includes it).

docs/architecture.md target: >= 1,000 events/s rendered with <= 25% of one core and
<= 100 ms event-to-screen.

    .venv/bin/python bench/console_render.py [--events 20000] [--rate 1000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import os
import statistics
import struct
import sys
import termios
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import urwid
from urwid.display import raw

from console.app import ConsoleApp
from console.screen import LabScreen
from events import Event, new_event
from events.catalogue import agent, director, obs, run, svc, ticket, workload
from projections.lab_view import LabView
from subjects.ratelimiter.details import CounterView, SnapshotDetails, StoreHealth, WorkloadDetails

RUN = "r20261124t235800-bench"
NODES = ("rl-1", "rl-2", "rl-3")
KEYS = [f"user:{i}" for i in range(12)]


def synthetic_run(n: int, t0: datetime, step_s: float = 0.001) -> list[Event]:
    """``n`` events, one per ``step_s``: snapshots, workload, heartbeats, tickets and agent steps."""
    out: list[Event] = []

    def add(i: int, data: object, source: str = "bench") -> None:
        out.append(new_event(data, run=RUN, source=source, time=t0 + timedelta(seconds=i * step_s)))  # type: ignore[arg-type]

    add(0, run.RunStarted(scenario="ratelimiter-demo", subject="ratelimiter", fault="node_kill"))
    add(0, director.ChapterStarted(scenario="ratelimiter-demo", index=3, total=7, chapter="fault",
                                   title="Fault injection",
                                   narration="Chaos kills one node. Watch the monitor notice it.",
                                   advance="press space", timeout_s=30))
    tickets_opened = 0
    i = 2
    while len(out) < n:
        at = t0 + timedelta(seconds=i * step_s)
        kind = i % 10
        if kind in (0, 1):
            add(i, obs.ObsSnapshot(
                subject="ratelimiter", ok=True, observed_at=at,
                nodes=[obs.NodeView(node=nd, status="down" if (nd == "rl-2" and tickets_opened % 2) else "up",
                                    last_seen=at)
                       for nd in NODES],
                components=[obs.ComponentView(name="redis", status="up", latency_ms=0.5)],
                details=SnapshotDetails(
                    backend=StoreHealth(ok=True, latency_ms=0.5),
                    counters=[CounterView(key=k, count=(i + j * 7) % 140, limit=100, window_s=1.0)
                              for j, k in enumerate(KEYS)]).model_dump(mode="json")), "monitor")
        elif kind == 2:
            add(i, workload.WorkloadStats(
                interval_s=1.0,
                operations=[workload.OperationStats(name=k, sent=90, ok=80, rejected=10) for k in KEYS],
                nodes=[workload.NodeStats(node=nd, sent=300, p99_ms=3.0) for nd in NODES],
                details=WorkloadDetails(limits=dict.fromkeys(KEYS, 100)).model_dump()), "loadgen")
        elif kind in (3, 4):
            add(i, svc.ServiceHeartbeat(service=("monitor", "agent", "chaos")[i % 3], instance="x", version="1",
                                        pid=1, uptime_s=i * step_s))
        else:
            tid = f"tk-{tickets_opened:010d}"
            phase = (i // 10) % 8
            if phase == 0 and kind == 5:
                tickets_opened += 1
                tid = f"tk-{tickets_opened:010d}"
                add(i, ticket.TicketOpened(ticket_id=tid, invariant="node_down", entity="rl-2", subject="ratelimiter",
                                           summary="rl-2 is down", first_seen=at), "monitor")
            elif tickets_opened == 0:
                add(i, agent.AgentThought(ticket_id="tk-none", text="idle"), "agent")
            elif phase == 1 and kind == 5:
                add(i, ticket.TicketClaimed(ticket_id=tid, agent="agent-1", policy="rules",
                                            lease_until=at + timedelta(seconds=30)), "agent")
            elif phase == 3 and kind == 5:
                add(i, ticket.TicketDiagnosed(ticket_id=tid, hypothesis="rl-2 process died"), "agent")
            elif phase == 7 and kind == 9:
                add(i, ticket.TicketResolved(ticket_id=tid, by="agent", agent="agent-1"), "agent")
            elif kind in (6, 7):
                add(i, agent.AgentToolCall(ticket_id=tid, call_id=str(i), tool="list_nodes", args={"node": "rl-2"}),
                    "agent")
            else:
                add(i, agent.AgentToolResult(ticket_id=tid, call_id=str(i), tool="list_nodes", ok=True,
                                             result={"nodes": [{"node": "rl-2", "status": "down"}]}), "agent")
        i += 1
    return out[:n]


def burst(events: list[Event], size: tuple[int, int]) -> None:
    view = LabView(RUN)
    clock_at = [events[0].time]
    screen = LabScreen(view, lambda: clock_at[0])
    list(screen.render(size).content())  # warm-up: build the layout once, outside the figures
    gc.collect()
    renders: list[float] = []
    last_render = time.perf_counter()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for event in events:
        view.apply(event)
        now = time.perf_counter()
        if now - last_render >= 0.05:
            clock_at[0] = event.time
            screen.refresh()
            r0 = time.perf_counter()
            list(screen.render(size).content())
            renders.append(time.perf_counter() - r0)
            last_render = time.perf_counter()
    screen.refresh()
    r0 = time.perf_counter()
    list(screen.render(size).content())
    renders.append(time.perf_counter() - r0)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    print(f"burst {size[0]}x{size[1]}: {len(events)} events folded+rendered in {wall:.2f} s = "
          f"{len(events) / wall:,.0f} events/s (cpu {cpu:.2f} s); {len(renders)} renders, "
          f"mean {statistics.mean(renders) * 1000:.2f} ms, max {max(renders) * 1000:.2f} ms per full screen")


class _PtyScreen(raw.Screen):
    """The real raw terminal screen, writing to a pseudo-terminal of a fixed size."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.master, self.slave = os.openpty()
        cols, rows = size
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self._in = os.fdopen(os.dup(self.slave), "rb", buffering=0)
        self._out = os.fdopen(os.dup(self.slave), "w", encoding="utf-8")
        super().__init__(input=self._in, output=self._out)
        self.draws: list[float] = []

    def draw_screen(self, size: tuple[int, int], canvas: urwid.Canvas) -> None:
        super().draw_screen(size, canvas)
        self.draws.append(time.perf_counter())

    def start_draining(self) -> None:
        """Read and discard what the terminal would show (a thread: writes to the pty block when full)."""

        def drain() -> None:
            while True:
                try:
                    if not os.read(self.master, 1 << 20):
                        return
                except OSError:
                    return

        threading.Thread(target=drain, daemon=True).start()

    def close(self) -> None:
        for f in (self._in, self._out):
            f.close()
        os.close(self.master)
        os.close(self.slave)


async def paced(events: list[Event], size: tuple[int, int], rate: float, seconds: float) -> None:
    screen = _PtyScreen(size)
    screen.start_draining()
    view = LabView(RUN)
    app = ConsoleApp(view, None, screen=screen, clock=lambda: view.now() or datetime.now(UTC))
    runner = asyncio.create_task(app.run())
    await asyncio.sleep(0.2)  # let the first frame paint
    applied: list[float] = []
    total = min(len(events), int(rate * seconds))
    batch_every = 0.01
    per_batch = max(1, int(rate * batch_every))
    draws_before = len(screen.draws)
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    start = time.perf_counter()
    sent = 0
    while sent < total:
        target = start + (sent / rate)
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the synthetic producer
        for event in events[sent: sent + per_batch]:
            view.apply(event)
            applied.append(time.perf_counter())
            app.invalidate()
        sent += per_batch
    await asyncio.sleep(0.2)  # let the last coalesced redraw happen
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    app.quit()
    await runner
    screen.close()
    draws = screen.draws[draws_before:]
    latencies: list[float] = []
    d = 0
    for t in applied:
        while d < len(draws) and draws[d] < t:
            d += 1
        if d < len(draws):
            latencies.append(draws[d] - t)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    worst = latencies[-1] * 1000 if latencies else float("nan")
    print(f"paced {size[0]}x{size[1]}: {len(applied)} events at {len(applied) / wall:,.0f} events/s over "
          f"{wall:.1f} s, cpu {100 * cpu / wall:.1f}% of one core, {len(draws)} draws; "
          f"event-to-screen p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms "
          f"({len(latencies)}/{len(applied)} events drawn)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    t0 = datetime(2026, 11, 24, 23, 58, tzinfo=UTC)
    events = synthetic_run(max(args.events, int(args.rate * args.seconds)), t0)
    fold0 = time.perf_counter()
    view = LabView(RUN)
    for event in events:
        view.apply(event)
    fold_s = time.perf_counter() - fold0
    print(f"fold only: {len(events)} events in {fold_s:.2f} s = {len(events) / fold_s:,.0f} events/s "
          f"({len(view.tickets)} tickets)")
    for size in ((80, 24), (200, 60)):
        burst(events[: args.events], size)
    for size in ((80, 24), (200, 60)):
        asyncio.run(paced(events, size, args.rate, args.seconds))


if __name__ == "__main__":
    main()

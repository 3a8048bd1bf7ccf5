"""Paced console replay benchmark: CPU of `oplab console --replay --speed 10`, as % of one core.

A synthetic run (the mix of ``bench/console_render.py``: snapshots, workload stats, heartbeats,
tickets and agent steps) at ``--rate`` events per second of log time for ``--seconds`` is published
to an embedded nats-server and read back as the console reads it (:func:`console.replay.read_history`).
It is then played by the real :class:`console.replay.ReplayPlayer` into the real
:class:`console.app.ConsoleApp`, which draws on a real urwid raw terminal screen attached to a
pseudo-terminal (its output read and discarded), at ``--speed`` (10 by default) from the first
event to the last. The figure is the CPU time of this process over the wall time of the playing
(process time / wall time), for 80x24 and 200x60, with its ratio to the target.

Target (issue #11): paced replay at 10x uses <= 25% of one core.

    .venv/bin/python bench/console_replay.py [--rate 10] [--seconds 120] [--speed 10]

Not a test: it prints, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import urwid  # noqa: E402
from console_render import RUN, _PtyScreen, synthetic_run  # noqa: E402

from console.app import ConsoleApp  # noqa: E402
from console.replay import Recorded, ReplayPlayer, read_history  # noqa: E402
from events.bus import Bus  # noqa: E402
from events.settings import BusSettings  # noqa: E402
from oplab.infra import start_nats  # noqa: E402
from projections.lab_view import LabView  # noqa: E402

TARGET_CPU = 0.25
CHUNK = 1000


async def stored_run(rate: float, seconds: float, workdir: Path) -> list[Recorded]:
    """The synthetic run, published to a fresh embedded nats-server and read back."""
    events = synthetic_run(int(rate * seconds), datetime(2026, 11, 24, 23, 58, tzinfo=UTC), step_s=1 / rate)
    server = start_nats(workdir / "nats")
    try:
        bus = await Bus.connect(BusSettings(nats_url=server.url), source="bench")
        try:
            for i in range(0, len(events), CHUNK):
                await bus.publish_batch(events[i:i + CHUNK])
            return await read_history(bus, RUN)
        finally:
            await bus.close()
    finally:
        server.stop()


class _Screen(_PtyScreen):
    """The pty screen, telling when it drew its first frame."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__(size)
        self.drew = asyncio.Event()

    def draw_screen(self, size: tuple[int, int], canvas: urwid.Canvas) -> None:
        super().draw_screen(size, canvas)
        self.drew.set()


async def play(history: list[Recorded], size: tuple[int, int], speed: float) -> None:
    screen = _Screen(size)
    screen.start_draining()
    view = LabView(RUN)
    player = ReplayPlayer(view, history, speed=speed)
    app = ConsoleApp(view, None, live=False, replay=player, screen=screen)
    player.on_change = app.invalidate
    runner = asyncio.create_task(app.run())
    await asyncio.wait_for(screen.drew.wait(), 10)  # the first frame (screen setup) is not part of the figure
    draws_before = len(screen.draws)
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await player.play()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    app.quit()
    await runner
    screen.close()
    span = (history[-1].event.time - history[0].event.time).total_seconds()
    share = cpu / wall
    print(f"replay x{speed:g} {size[0]}x{size[1]}: {len(history)} events ({span:.0f} s of log) played in "
          f"{wall:.1f} s (expected {span / speed:.1f} s), {len(screen.draws) - draws_before} draws; "
          f"cpu {100 * share:.1f}% of one core = {share / TARGET_CPU:.2f} x the {100 * TARGET_CPU:.0f}% target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10.0, help="events per second of log time (a demo run: ~9)")
    parser.add_argument("--seconds", type=float, default=120.0, help="log time of the run")
    parser.add_argument("--speed", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oplab-bench-") as workdir:
        history = asyncio.run(stored_run(args.rate, args.seconds, Path(workdir)))
    for size in ((80, 24), (200, 60)):
        asyncio.run(play(history, size, args.speed))


if __name__ == "__main__":
    main()

"""Running the demo: headless (auto mode, chapters printed, one JSON summary line)
or interactive (the console in the foreground). Both bring the stack up for one
run and down again on exit, so every demo run starts clean. A run under Docker
Compose is copied into the local log before its project goes down, so it can be
replayed like any other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from events import ChapterStarted, Event, RunFinished
from events.bus import Bus
from events.commands import request
from events.settings import BusSettings
from oplab.run_log import follow_run
from oplab.settings import LabSettings
from oplab.stack_info import StackInfo
from projections.timeline import RunTimeline


async def watch_headless(info: StackInfo, on_line: Callable[[str], None], timeout_s: float) -> dict[str, Any]:
    """Follow the run (a :class:`~oplab.run_log.RunLog`), ``on_line`` each chapter as it starts, until
    ``run.finished``: return its summary. After ``timeout_s`` without it, the summary of the events so far
    with the outcome ``timeout (...)``."""

    def chapter(event: Event) -> None:
        if isinstance(event.data, ChapterStarted):
            on_line(f"[{event.data.index + 1}/{event.data.total}] {event.data.title}")

    bus = await Bus.connect(BusSettings(nats_url=info.nats_url), source="oplab-demo")
    try:
        log, replay = await follow_run(bus, info.run, on_event=chapter)
    except BaseException:
        await bus.close()
        raise
    try:
        finished = await log.wait_for(lambda e: isinstance(e.data, RunFinished), timeout_s, "run.finished")
        assert isinstance(finished.data, RunFinished)
        return dict(finished.data.summary)
    except TimeoutError:
        timeline = RunTimeline()
        for _, event in log.events:
            timeline.apply(event)
        result = timeline.summary().model_dump(mode="json")
        result["outcome"] = f"timeout ({result.get('outcome')})"
        return result
    finally:
        await replay.stop()
        await bus.close()


async def finished_summary(info: StackInfo) -> dict[str, Any]:
    """The run's ``run.finished`` summary, or ``{}`` if it has not finished."""
    from oplab.history import run_history

    finished = [e.data for _, e in await run_history(info.nats_url, info.run) if isinstance(e.data, RunFinished)]
    return dict(finished[-1].summary) if finished else {}


async def run_interactive(info: StackInfo) -> None:
    """The console in the foreground; space/→ asks the director for the next chapter."""
    await open_console(info.nats_url, info.run)


class NothingToReplay(LookupError):
    """The run asked for has no events in the log."""


async def open_console(nats_url: str, run: str, replay: bool = False, *, speed: float | None = None,
                       start_from: str | None = None) -> None:
    """The console on ``run``: live, or (``replay``) its recorded events played at ``speed`` x their pace
    (None or 0: at once) from ``start_from`` (see :mod:`oplab.replay_from`). In a replay the run is read
    before the screen opens: NothingToReplay if it has no events, BadStart if ``start_from`` names no
    point of it."""
    from console.live import run_console
    from console.replay import read_history
    from oplab.replay_from import start_index
    from projections.retention import run_completeness

    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-console")

    async def next_chapter() -> None:
        # a refusal propagates: the console shows it in its footer
        await request(bus.nc, "director", "next", timeout=2.0, wait_for_service_s=0.5)

    try:
        if not replay:
            await run_console(bus, run, on_next=next_chapter)
            return
        history = await read_history(bus, run)
        if not history:
            raise NothingToReplay(f"run {run} has no events in the log (`oplab runs` lists the recorded runs)")
        start = start_index(history, start_from) if start_from else 0
        gap = (await run_completeness(bus, run)).notice
        await run_console(bus, run, replay=True, replay_speed=speed, history=history, start=start, notice=gap)
    finally:
        await bus.close()


async def export_for_replay(info: StackInfo, home: Path) -> Path:
    """Write the run's events (a run under compose, whose log goes down with the project) to
    ``<home>/runs/<run>.jsonl``, for :func:`import_for_replay` into the local log."""
    from oplab.archive import export_run

    path = home / "runs" / f"{info.run}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        await export_run(info.nats_url, info.run, out)
    return path


def import_for_replay(path: Path, settings: LabSettings) -> int:
    """Store an exported run in the local log (``oplab events``, ``oplab console --replay``)."""
    from oplab.access import lab_nats_url
    from oplab.archive import import_run, read_archive
    from oplab.nats_auth import ADMIN

    with lab_nats_url(settings, ADMIN) as url:
        return asyncio.run(import_run(url, read_archive(path))).stored

"""``oplab state --run R [--at SEQ|TIME] [--json]``: a run as it stood at one point of its log."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from oplab.cli.common import JsonOpt, emit, fail, progress
from oplab.settings import LabSettings

if TYPE_CHECKING:
    from events import Event


def register(app: typer.Typer) -> None:
    app.command("state")(state)


def state(run: Annotated[str, typer.Option(help="Run id (see `oplab runs`)")],
          at: Annotated[str | None, typer.Option(
              help="A sequence, a time (10:00:00 on the run's day, or ISO) or an age (-5m); "
                   "default: the run's end")] = None,
          as_json: JsonOpt = False) -> None:
    """The run as it stood at a point of its log: chapter, active faults, tickets, cluster, workload
    (folded with the console's own fold; ``--json``: one object)."""
    from oplab.access import lab_nats_url
    from oplab.run_state import fold_until, state_document, state_lines
    from oplab.time_travel import describe_position, span_of

    with lab_nats_url(LabSettings()) as url:
        history, gap = asyncio.run(_read(url, run))
    if not history:
        fail(f"no events for run {run!r} (`oplab runs` lists the recorded runs)")
    if gap:
        progress(gap)
    span = span_of(history, f"run {run}")
    try:
        position = span.resolve(at) if at is not None else None
    except ValueError as exc:  # not a position, or outside the run (OutOfSpan)
        fail(str(exc), 2)
    view, seq, time = fold_until(run, history, position)
    progress(f"run {run} as it stood at {describe_position(position) if position else 'its end'} "
             f"({span.describe()})")
    doc = state_document(view, seq, time)
    emit(doc, as_json, "\n".join(state_lines(doc)))


async def _read(url: str, run: str) -> tuple[list[tuple[int, Event]], str | None]:
    """The run's events, and what the log no longer holds of it (None: it holds it all)."""
    from oplab.history import run_history
    from projections.retention import run_gap

    history = await run_history(url, run)
    return history, (await run_gap(url, run) if history else None)

"""``oplab projections rebuild [NAME] [--verify]``: the stored views folded from the log.

The logic is ``projections.ticket_log.rebuild``; this is its command line: a progress bar on
stderr while the scratch view folds, the throughput at the end, each difference on ``--verify``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from oplab.cli.common import JsonOpt, emit, fail, progress
from oplab.settings import LabSettings

if TYPE_CHECKING:
    from projections.ticket_log import TicketLogView
    from projections.ticket_log.reading import Progress
    from projections.ticket_log.rebuild import RebuildResult, VerifyResult

Projection = Literal["ticket_log"]
"""The stored views (the console's views live in memory and are folded afresh every time)."""

projections_app = typer.Typer(help="Stored views folded from the log: rebuild them, verify them.",
                              no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(projections_app, name="projections")


@projections_app.command("rebuild")
def rebuild(name: Annotated[Projection, typer.Argument(help="The stored view")] = "ticket_log",
            verify: Annotated[bool, typer.Option(
                "--verify", help="Change nothing: fold a scratch view up to the live one's position and "
                                 "compare them row by row (exit 1 on any difference)")] = False,
            force: Annotated[bool, typer.Option(
                "--force", help="Rebuild even though the log's first events aged out: the tickets built "
                                "only from them are dropped from the view")] = False,
            as_json: JsonOpt = False) -> None:
    """Drop and re-fold a view from sequence 1 (safe while the projector runs: the new rows replace the
    old in one transaction), or with ``--verify`` check it against a fresh fold."""
    from oplab.access import lab_nats_url

    view, where = _open_view()
    try:
        with lab_nats_url(LabSettings()) as url, _bar("verifying" if verify else "rebuilding") as bar:
            outcome = asyncio.run(_run(url, view, verify, bar, force))
    finally:
        view.close()
    if isinstance(outcome, str):
        fail(outcome)
    from projections.ticket_log.rebuild import VerifyResult

    if isinstance(outcome, VerifyResult):
        _report_verify(name, where, outcome, as_json)
    else:
        _report_rebuild(name, where, outcome, as_json)


def _open_view() -> tuple[TicketLogView, str]:
    from eventsourcing.persistence import OperationalError

    from oplab.tickets import ticket_log_settings
    from projections.ticket_log import open_ticket_log

    settings = ticket_log_settings()
    try:
        where = settings.location()
        return open_ticket_log(settings), where.describe()
    except ValueError as exc:  # a bad OPLAB_TICKETLOG_URL
        fail(str(exc), 2)
    except (OperationalError, RuntimeError) as exc:
        fail(f"cannot open the ticket log: {exc}")


async def _run(url: str, view: TicketLogView, verify: bool, bar: Progress,
               force: bool = False) -> RebuildResult | VerifyResult | str:
    from nats.js.errors import NotFoundError

    from events.bus import Bus
    from events.settings import BusSettings
    from projections.ticket_log.rebuild import HistoryAgedOut
    from projections.ticket_log.rebuild import rebuild as rebuild_view
    from projections.ticket_log.rebuild import verify as verify_view

    bus = await Bus.connect(BusSettings(nats_url=url), source="oplab-cli", ensure_stream=False)
    try:
        if verify:
            return await verify_view(bus, view, on_progress=bar)
        return await rebuild_view(bus, view, on_progress=bar, force=force)
    except HistoryAgedOut as exc:
        return f"{exc}; nothing was changed (`--force` rebuilds from what the log still holds)"
    except NotFoundError:
        return "the lab's log has no stream yet: there is nothing to fold"
    finally:
        await bus.close()


@contextmanager
def _bar(what: str) -> Iterator[Progress]:
    """A rich progress bar on stderr, driven by (sequence folded, sequence to reach)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:  # a pipe or a file: no bar to redraw (rich would leave blank lines)
        yield lambda done, total: None
        return
    with Progress(TextColumn(f"  {what}"), BarColumn(), MofNCompleteColumn(), TextColumn("seq"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        yield update


def _report_rebuild(name: str, where: str, result: RebuildResult, as_json: bool) -> None:
    if result.cleared_ahead:
        progress("the view was ahead of the lab's log (built from another log): it was cleared first")
    if result.swaps_refused:
        progress(f"the projector moved the view meanwhile: caught up {result.swaps_refused} time(s) before the swap")
    emit({"projection": name, "store": where, "rows": result.rows, "position": result.position,
          "events": result.events, "seconds": round(result.seconds, 3),
          "events_per_s": round(result.events_per_s), "swaps_refused": result.swaps_refused,
          "cleared_ahead": result.cleared_ahead}, as_json,
         f"rebuilt {name} at {where}: {_rows(result.rows)}, up to seq {result.position}\n"
         f"{result.events} events in {result.seconds:.2f} s ({result.events_per_s:,.0f} events/s)")


def _report_verify(name: str, where: str, result: VerifyResult, as_json: bool) -> None:
    if result.ahead_of_stream:
        progress(f"the view has folded up to seq {result.position} but the lab's log ends at seq "
                 f"{result.stream_last_seq}: it was built from another log (`oplab projections rebuild {name}`)")
    if as_json:
        emit({"projection": name, "store": where, "rows": result.rows, "position": result.position,
              "differences": [d.to_json() for d in result.differences], "events": result.events,
              "seconds": round(result.seconds, 3), "first_seq": result.first_seq,
              "unverifiable": result.unverifiable}, True, "")
    else:
        if result.unverifiable:
            progress(f"the log starts at seq {result.first_seq} (older events aged out): "
                     f"{_rows(result.unverifiable)} built from them cannot be re-folded and were not compared")
        for difference in result.differences:
            typer.echo(difference.describe())
        if result.differences:
            typer.echo(f"{len(result.differences)} difference(s) between {name} at {where} and a fresh fold "
                       f"up to seq {result.position} ({_rows(result.rows)}); `oplab projections rebuild {name}` "
                       "replaces it")
        else:
            typer.echo(f"no difference in {_rows(result.rows)} ({name} at {where}, up to seq {result.position}; "
                       f"{result.events} events folded in {result.seconds:.2f} s)")
    if result.differences:
        raise typer.Exit(1)


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"

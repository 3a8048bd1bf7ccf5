"""Runs in the log: ``runs``, ``events`` (a run's events, and one event with its causes),
``export``, ``import``, ``console``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from oplab.cli.common import DefaultCommandGroup, JsonOpt, emit, fail, log_to_file
from oplab.nats_auth import ADMIN
from oplab.settings import LabSettings
from oplab.stack import Stack

events_app = typer.Typer(cls=DefaultCommandGroup, no_args_is_help=True,
                         help="A run's events (`oplab events RUN ...`), or one event with its causes "
                              "(`oplab events show SEQ|ID`).")


def register(app: typer.Typer) -> None:
    app.command()(runs)
    app.add_typer(events_app, name="events")
    app.command()(export)
    app.command("import")(import_)
    app.command()(console)


def runs(as_json: JsonOpt = False) -> None:
    """Runs recorded in the log (works after `oplab down` too)."""
    from oplab.access import lab_nats_url
    from oplab.history import list_runs

    with lab_nats_url(LabSettings()) as url:
        found = asyncio.run(list_runs(url))
    if as_json:
        typer.echo(json.dumps(found))
        return
    if not found:
        typer.echo("no runs recorded yet")
    for r in found:
        typer.echo(f"{r['run']}  {r['started'][:19]}  {r['subject']:<12} {r['scenario']:<12} "
                   f"{r['fault'] or '-':<14} {r['outcome'] or 'unfinished'}")


@events_app.command("list")
def events_list(run: Annotated[str, typer.Argument(help="Run id (see `oplab runs`)")],
                type_: Annotated[list[str] | None, typer.Option(
                    "--type", help="Event type, glob (ticket.*) or domain; repeatable")] = None,
                correlation: Annotated[str | None, typer.Option(
                    help="Only events about this ticket or fault id")] = None,
                source: Annotated[str | None, typer.Option(help="Only events this service recorded")] = None,
                since: Annotated[str | None, typer.Option(help="From: a sequence, a time or an age (-30s)")] = None,
                until: Annotated[str | None, typer.Option(help="Up to: a sequence, a time or an age")] = None,
                as_json: JsonOpt = False) -> None:
    """One run's events from the log, in order (``--json``: one object per line, with ``seq``)."""
    from events.envelope import utcnow
    from oplab.access import lab_nats_url
    from oplab.event_query import EventQuery, parse_position
    from oplab.history import describe, run_history

    with lab_nats_url(LabSettings()) as url:
        everything = asyncio.run(run_history(url, run))
    if not everything:
        fail(f"no events for run {run!r} (`oplab runs` lists the recorded runs)")
    now, day = utcnow(), everything[0][1].time
    try:
        query = EventQuery(types=tuple(type_ or ()), correlation=correlation, source=source,
                           since=parse_position(since, now=now, day=day) if since else None,
                           until=parse_position(until, now=now, day=day) if until else None)
    except ValueError as exc:
        fail(str(exc), 2)
    history = [(seq, event) for seq, event in everything if query.matches(seq, event)]
    if not history and type_ and not query.types_known({e.type for _, e in everything}):
        known = sorted({e.type for _, e in everything})
        fail(f"run {run} has no events of type {', '.join(type_)}; it has: {', '.join(known)}", 2)
    for seq, event in history:
        if as_json:
            typer.echo(json.dumps({"seq": seq, **event.model_dump(mode="json")}))
        else:
            typer.echo(f"{seq:>7} {event.time:%H:%M:%S.%f}"[:-3] + f" {event.type:<26} {describe(event)}")


def export(run: Annotated[str, typer.Argument(help="Run id (see `oplab runs`)")],
           output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout)")] = None,
           ) -> None:
    """Write one run's events, as stored, to a JSON-lines file (`oplab import` reads it back)."""
    from events.ids import is_token
    from oplab.access import lab_nats_url
    from oplab.archive import export_run

    if not is_token(run):
        fail(f"{run!r} is not a run id (`oplab runs` lists the recorded runs)", 2)
    partial = output.with_name(f".{output.name}.partial") if output is not None else None
    with lab_nats_url(LabSettings()) as url:
        if partial is None:
            count = asyncio.run(export_run(url, run, sys.stdout))
        else:
            with partial.open("w") as fh:
                count = asyncio.run(export_run(url, run, fh))
    if count == 0:
        if partial is not None:
            partial.unlink(missing_ok=True)
        fail(f"no events for run {run!r} (`oplab runs` lists the recorded runs)")
    if partial is not None and output is not None:
        partial.replace(output)  # only a complete export takes the file's name
        typer.echo(f"exported {count} events of run {run} to {output}", err=True)


def import_(path: Annotated[Path, typer.Argument(help="A file written by `oplab export`")],
            as_json: JsonOpt = False) -> None:
    """Store an exported run in this lab's log: every line is checked first, then what the log does not
    hold yet is stored (importing twice stores nothing twice; an interrupted import is completed)."""
    from oplab.access import lab_nats_url
    from oplab.archive import ArchiveError, RunAlreadyInLog, import_run, read_archive

    try:
        archive = read_archive(path)
        with lab_nats_url(LabSettings(), ADMIN) as url:
            done = asyncio.run(import_run(url, archive))
    except RunAlreadyInLog as exc:
        fail(str(exc))
    except ArchiveError as exc:
        fail(str(exc), 2)
    notes = [f"{done.already} were already in the log"] if done.already else []
    if archive.undecodable:
        notes.append(f"{archive.undecodable} are not events and were kept as they were stored")
    emit({"run": done.run, "events": done.stored, "already": done.already, "undecodable": archive.undecodable},
         as_json, f"imported run {done.run}: {done.stored} events" + (f" ({'; '.join(notes)})" if notes else "")
         + f"; `oplab events {done.run}`, `oplab console --run {done.run} --replay`")


def console(run: Annotated[str | None, typer.Option(
                help="Run id (default: OPLAB_RUN, the running stack's, else the latest run in the log)")] = None,
            replay: Annotated[bool, typer.Option(help="Replay a finished run from the log")] = False) -> None:
    """Open the console on a live run, or replay a recorded one."""
    import os

    from oplab.access import lab_nats_url
    from oplab.demo import open_console
    from oplab.history import list_runs

    settings = LabSettings()
    info = Stack(settings).info()
    run = run or os.environ.get("OPLAB_RUN") or (info.run if info else None)
    log_to_file(settings.home.resolve() / "logs" / "console.log")
    with lab_nats_url(settings) as url:
        if not run:  # e.g. `docker compose run --rm console`: the run the lab is playing
            recorded = asyncio.run(list_runs(url))
            if not recorded:
                fail("no run given, none running and none recorded yet: start one (`oplab up`)", 2)
            run = max(recorded, key=lambda r: r["started"])["run"]
        asyncio.run(open_console(url, run, replay=replay))

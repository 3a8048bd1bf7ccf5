"""Runs in the log: ``runs``, ``events`` (a run's events, and one event with its causes),
``export``, ``import``, ``console``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oplab.cli.common import (
    DefaultCommandGroup,
    JsonOpt,
    emit,
    fail,
    log_to_file,
    print_listing,
    progress,
    stdout_console,
    table,
)
from oplab.nats_auth import ADMIN
from oplab.settings import LabSettings
from oplab.stack import Stack

if TYPE_CHECKING:
    from events import Event
    from oplab.causation import Chain
    from oplab.event_query import EventQuery

events_app = typer.Typer(cls=DefaultCommandGroup, no_args_is_help=True,
                         help="A run's events (`oplab events RUN ...`), one event with its causes "
                              "(`oplab events show SEQ|ID`), or what each type means (`oplab events types`).")


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
        return
    print_listing(stdout_console(), table(
        ("run", "started", "subject", "scenario", "fault", "outcome"),
        ((r["run"], r["started"][:19], r["subject"], r["scenario"], r["fault"] or "-", r["outcome"] or "unfinished")
         for r in found)))


@events_app.command("list")
def events_list(run: Annotated[str, typer.Argument(help="Run id (see `oplab runs`)")],
                type_: Annotated[list[str] | None, typer.Option(
                    "--type", help="Event type, glob (ticket.*) or domain; repeatable")] = None,
                correlation: Annotated[str | None, typer.Option(
                    help="Only events about this ticket or fault id")] = None,
                source: Annotated[str | None, typer.Option(help="Only events this service recorded")] = None,
                since: Annotated[str | None, typer.Option(help="From: a sequence, a time or an age (-30s)")] = None,
                until: Annotated[str | None, typer.Option(help="Up to: a sequence, a time or an age")] = None,
                follow: Annotated[bool, typer.Option(
                    "--follow", "-f", help="Then print new matching events live, until Ctrl-C (or --until)")] = False,
                as_json: JsonOpt = False) -> None:
    """One run's events from the log, in order (``--json``: one object per line, with ``seq``).

    ``--follow``: then each new matching event as it is stored, until Ctrl-C (exit 130) or, with a
    future ``--until``, until that is passed (exit 0); a run with no events yet is waited for."""
    from events.envelope import registered_types, utcnow
    from oplab.access import lab_nats_url
    from oplab.event_query import EventQuery, parse_position
    from oplab.history import run_history
    from projections.retention import run_gap

    with lab_nats_url(LabSettings()) as url:
        everything = asyncio.run(run_history(url, run))
        if not everything and not follow:
            fail(f"no events for run {run!r} (`oplab runs` lists the recorded runs)")
        now, day = utcnow(), everything[0][1].time if everything else None
        try:
            query = EventQuery(types=tuple(type_ or ()), correlation=correlation, source=source,
                               since=parse_position(since, now=now, day=day) if since else None,
                               until=parse_position(until, now=now, day=day) if until else None)
        except ValueError as exc:
            fail(str(exc), 2)
        history = [(seq, event) for seq, event in everything if query.matches(seq, event)]
        if follow and type_ and not query.types_known(set(registered_types())):
            fail(f"no event type matches {', '.join(type_)}: nothing to follow "
                 "(`oplab events RUN` lists a run's types)", 2)
        if not follow and not history and type_ and not query.types_known({e.type for _, e in everything}):
            known = sorted({e.type for _, e in everything})
            fail(f"run {run} has no events of type {', '.join(type_)}; it has: {', '.join(known)}", 2)
        if everything and (gap := asyncio.run(run_gap(url, run))):  # a run whose beginning aged out says so
            progress(gap)
        for seq, event in history:
            _print_event(seq, event, as_json)
        if follow:
            _follow(url, run, query, everything[-1][0] if everything else 0, as_json)


def _print_event(seq: int, event: Event, as_json: bool) -> None:
    """One event on one line (``--json``: its document with ``seq``), flushed at once."""
    from oplab.causation import event_doc
    from oplab.history import describe

    if as_json:
        typer.echo(json.dumps(event_doc(seq, event)))
    else:
        typer.echo(f"{seq:>7} {event.time:%H:%M:%S.%f}"[:-3] + f" {event.type:<26} {describe(event)}")


def _follow(url: str, run: str, query: EventQuery, after_seq: int, as_json: bool) -> None:
    """Print ``run``'s new events matching ``query`` as they are stored; Ctrl-C ends it with 130
    (after the consumer and connection are closed, and the caller's embedded NATS, if any, stopped)."""
    from events.envelope import utcnow
    from oplab.live_events import tail_run

    if query.until is not None and query.until.at is not None and query.until.at <= utcnow():
        return  # --until has passed: nothing new can match

    def show(seq: int, event: Event) -> None:
        if query.matches(seq, event):
            _print_event(seq, event, as_json)

    def caught_up() -> None:
        progress(f"following run {run} live (Ctrl-C to stop)" if after_seq else
                 f"run {run} has no events yet: waiting for them (Ctrl-C to stop)")

    try:
        asyncio.run(tail_run(url, run, show, after_seq=after_seq, until=query.until, on_caught_up=caught_up))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except BrokenPipeError:  # the reader closed the pipe (`| head`): done; no error on the final flush either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@events_app.command("show")
def events_show(ref: Annotated[str, typer.Argument(
                    metavar="SEQ|ID", help="A stream sequence (`oplab events RUN` shows them) or an event id")],
                run: Annotated[str | None, typer.Option(
                    help="Look for the id in this run only (default: the whole log)")] = None,
                as_json: JsonOpt = False) -> None:
    """One event in full, what caused it (back to the root) and the events correlated with it.

    The causation chain is nearest first; correlated events are those about the same ticket, fault
    or correlation. ``--json``: the event with ``seq``, ``causation_chain`` and ``correlated``."""
    from oplab.access import lab_nats_url
    from oplab.causation import causation_chain, correlated_with, event_doc, index_by_id
    from oplab.history import EventNotFound, read_event, run_history

    ref = ref.strip()
    if not ref:
        fail("give a stream sequence or an event id", 2)

    async def explain(url: str) -> tuple[tuple[int, Event], list[tuple[int, Event]]]:
        found = await read_event(url, ref, run)
        return found, await run_history(url, found[1].run)

    with lab_nats_url(LabSettings()) as url:
        try:
            (seq, event), history = asyncio.run(explain(url))
        except EventNotFound as exc:
            fail(str(exc))
    chain = causation_chain(event, index_by_id(history))
    correlated = correlated_with(event, history)
    if as_json:
        typer.echo(json.dumps({**event_doc(seq, event), "causation_chain": chain.as_json(),
                               "correlated": [event_doc(s, e) for s, e in correlated]}))
        return
    _show_event(seq, event, chain, correlated)


@events_app.command("types")
def events_types(patterns: Annotated[list[str] | None, typer.Argument(
                     metavar="TYPE", help="Event types, globs (ticket.*) or domains (default: all)")] = None,
                 as_json: JsonOpt = False) -> None:
    """The event catalogue: what each type means, its version and its fields (no lab needed).

    ``--json``: one array, an object per type with ``type``, ``version``, ``meaning``, ``fields``
    and its JSON ``schema``."""
    from events.type_docs import catalogue

    found = catalogue(patterns or ())
    if not found:
        fail(f"no event type matches {', '.join(patterns or ())}: `oplab events types` lists them all", 2)
    if as_json:
        typer.echo(json.dumps([doc.as_json() for doc in found]))
        return
    for doc in found:
        typer.secho(f"{doc.type} (v{doc.version})", bold=True)
        for line in (doc.meaning or "(undocumented)").splitlines():
            typer.echo(f"  {line}".rstrip())
        for field in doc.fields:
            typer.echo(f"    {field.as_text()}")


def _show_event(seq: int, event: Event, chain: Chain, correlated: list[tuple[int, Event]]) -> None:
    from oplab.causation import MISSING_NOTE

    typer.secho(f"{event.type} (seq {seq}, v{event.v})", bold=True)
    for name in ("id", "time", "run", "source", "correlation", "causation"):
        value = getattr(event, name)
        typer.echo(f"  {name:<12} {value.isoformat() if name == 'time' else value or '-'}")
    typer.echo("  data")
    for line in json.dumps(event.data.model_dump(mode="json"), indent=2).splitlines():
        typer.echo(f"    {line}")
    typer.secho("caused by" + (" (nearest first)" if chain.causes else ""), bold=True)
    if not chain.causes and chain.missing is None and chain.loop is None:
        typer.echo("  nothing: this event is a root")
    for cause_seq, cause in chain.causes:
        _print_event(cause_seq, cause, False)
    if chain.missing is not None:
        typer.echo(f"  missing: {chain.missing} ({MISSING_NOTE})")
    if chain.loop is not None:
        typer.echo(f"  loop: {chain.loop} was met before on the way back")
    typer.secho(f"correlated ({len(correlated)})", bold=True)
    for other_seq, other in correlated:
        _print_event(other_seq, other, False)


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
            replay: Annotated[bool, typer.Option(help="Replay a finished run from the log")] = False,
            speed: Annotated[float | None, typer.Option(
                min=0, help="Replay at the recorded pace x N (default 1; 0 jumps to the end)")] = None,
            start_from: Annotated[str | None, typer.Option(
                "--from", help="Replay from a chapter (detection, 4), a sequence (120, seq:120), a time "
                               "(10:00:00) or an age before the run's end (-30s); what comes before is "
                               "folded at once")] = None) -> None:
    """Open the console on a live run, or replay a recorded one.

    Replay keys: space pause/resume, → one event (paused), n next chapter, +/- speed, q quit.
    """
    import os

    from oplab.access import lab_nats_url
    from oplab.demo import NothingToReplay, open_console
    from oplab.history import list_runs
    from oplab.replay_from import BadStart

    if not replay and (speed is not None or start_from is not None):
        fail("--speed and --from are for a replay: add --replay", 2)
    settings = LabSettings()
    info = Stack(settings).info()
    run = run or os.environ.get("OPLAB_RUN") or (info.run if info else None)
    log_to_file(settings.home.resolve() / "logs" / "console.log")
    # a live run whose agents wait for a human: the console's a / r write the decision (operator's right)
    deciding = not replay and "manual" in (settings.approval, info.approval if info else None)
    with lab_nats_url(settings, "operator" if deciding else "viewer") as url:
        if not run:  # e.g. `docker compose run --rm console`: the run the lab is playing
            recorded = asyncio.run(list_runs(url))
            if not recorded:
                fail("no run given, none running and none recorded yet: start one (`oplab up`)", 2)
            run = max(recorded, key=lambda r: r["started"])["run"]
        if not replay:
            asyncio.run(open_console(url, run))
            return
        progress(f"reading run {run}…")
        try:
            asyncio.run(open_console(url, run, replay=True, speed=1.0 if speed is None else speed,
                                     start_from=start_from))
        except NothingToReplay as exc:
            fail(str(exc), 1)
        except BadStart as exc:
            fail(str(exc), 2)

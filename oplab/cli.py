"""``oplab``: run the lab, look at it, poke it.

Human-readable output by default; ``--json`` where a program may read it.
Exit status: 0 success, 1 the thing asked for did not happen, 2 bad usage.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from oplab.nats_auth import ADMIN
from oplab.settings import LabSettings
from oplab.stack import Stack, StackError, StackInfo, redacted
from subjects.registry import DEFAULT_SUBJECT

app = typer.Typer(help="Operator Lab: break a real system, watch an operator agent fix it.",
                  no_args_is_help=True, add_completion=False)
tickets_app = typer.Typer(help="The ticket log (a projection of the event log).", no_args_is_help=True)
chaos_app = typer.Typer(help="Faults: list, inject, revert (talks to the chaos service).", no_args_is_help=True)
app.add_typer(tickets_app, name="tickets")
app.add_typer(chaos_app, name="chaos")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]


def _stack() -> Stack:
    return Stack(LabSettings())


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _emit(doc: Any, as_json: bool, human: str) -> None:
    typer.echo(json.dumps(doc, default=str) if as_json else human)


def _progress(message: str) -> None:
    typer.secho(f"  {message}", fg=typer.colors.BRIGHT_BLACK, err=True)


def _log_to_file(path: Path) -> None:
    """While the console owns the terminal, logs go to a file (never onto the screen)."""
    import logging

    from services.runtime.logging import KeyValueFormatter

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _subject(name: str | None) -> Any:
    """The subject called ``name`` (default: ``OPLAB_SUBJECT``, else the default subject); exit 2 if unknown."""
    from subjects.registry import UnknownSubject, load_subject

    try:
        return load_subject(name or LabSettings().subject)
    except UnknownSubject as exc:
        _fail(str(exc), 2)


def _check_fault(fault: str | None, subject_name: str | None) -> tuple[str, str]:
    """(subject, fault): ``fault`` checked against the subject's catalogue and its scenario
    (default: the scenario's default fault). Exit 2 with the choices if it is not there."""
    from services.director.scenario import ScenarioError, load_scenario

    subject = _subject(subject_name)
    try:
        scenario = load_scenario(LabSettings().scenario, subject)
    except ScenarioError as exc:
        _fail(str(exc), 2)
    fault = fault or scenario.default_fault
    kinds = subject.catalogue().fault_kinds()
    if fault not in kinds:
        _fail(f"unknown fault {fault!r} for subject {subject.name}; choose one of: {', '.join(kinds)}", 2)
    if fault not in scenario.faults:
        _fail(f"scenario {scenario.name} does not play fault {fault!r}; it plays: {', '.join(scenario.faults)}", 2)
    return subject.name, fault


# -- the stack ---------------------------------------------------------------------


SubjectOpt = Annotated[str | None, typer.Option(
    "--subject", help=f"System under test (`oplab subjects`; default: OPLAB_SUBJECT, else {DEFAULT_SUBJECT})")]
FaultOpt = Annotated[str | None, typer.Option(help="Fault the director injects (default: the scenario's)")]


@app.command()
def up(fault: FaultOpt = None,
       mode: Annotated[str, typer.Option(
           help="Director: interactive (waits for `oplab console` keys) | auto (plays the scenario now)")
       ] = "interactive",
       subject: SubjectOpt = None,
       as_json: JsonOpt = False) -> None:
    """Start infrastructure and every service under supervisord (a new run of one subject)."""
    subject_name, fault = _check_fault(fault, subject)
    if mode not in ("auto", "interactive"):
        _fail("mode must be auto or interactive", 2)
    try:
        info = _stack().up(fault=fault, mode=mode, subject=subject_name, progress=_progress)
    except StackError as exc:
        _fail(str(exc))
    nats = redacted(info.nats_url)
    endpoints = {name: redacted(url) for name, url in info.endpoints.items()}
    where = ", ".join(f"{name} {url}" for name, url in endpoints.items())
    _emit({"run": info.run, "subject": info.subject, "fault": info.fault, "nats_url": nats, "endpoints": endpoints},
          as_json, f"run {info.run} ({info.subject}) is up: NATS {nats}" + (f"; {where}" if where else "")
          + "; `oplab status`, `oplab down`")


@app.command()
def down() -> None:
    """Stop every service (cleanly, SIGTERM) and the embedded infrastructure."""
    stopped = _stack().down(progress=_progress)
    typer.echo("stopped" if stopped else "nothing was running")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Processes of the running stack."""
    stack = _stack()
    try:
        info = stack.require()
        procs = stack.processes(info)
    except StackError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"run": info.run, "subject": info.subject, "processes": procs}))
        return
    typer.echo(f"run {info.run}  subject {info.subject}  fault {info.fault}  mode {info.mode}")
    width = max([12, *(len(p["name"]) for p in procs)])
    for p in procs:
        typer.echo(f"  {p['name']:<{width}} {p['state']:<10} {p['description']}")


@app.command()
def restart(service: str) -> None:
    """Restart one service (or node) of the running stack."""
    try:
        _stack().restart(service)
    except StackError as exc:
        _fail(str(exc))
    typer.echo(f"restarted {service}")


@app.command()
def logs(service: str,
         follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
         lines: Annotated[int, typer.Option("-n", "--lines")] = 40) -> None:
    """Show a service's log (under .oplab/logs/)."""
    try:
        path = _stack().log_file(service)
    except StackError as exc:
        _fail(str(exc))
    _tail(path, lines, follow)


def _tail(path: Path, lines: int, follow: bool) -> None:
    with path.open() as fh:
        for line in fh.readlines()[-lines:]:
            typer.echo(line.rstrip("\n"))
        while follow:
            line = fh.readline()
            if line:
                typer.echo(line.rstrip("\n"))
            else:
                time.sleep(0.2)  # following a growing file


@app.command()
def demo(fault: Annotated[str | None, typer.Option(
             help="Fault to play (see `oplab subjects`; default: the scenario's)")] = None,
         headless: Annotated[bool, typer.Option(help="No console: auto mode, chapters printed, JSON last")] = False,
         as_json: Annotated[bool, typer.Option("--json", help="Headless, and stdout holds only the JSON "
                                                              "summary (chapters go to stderr)")] = False,
         subject: SubjectOpt = None,
         ) -> None:
    """Bring the stack up for one run, play the scenario, bring it down.

    Headless: exit 0 only if the agent resolved the ticket (for a control
    fault, which breaks nothing: only if nobody took a mutating action).
    """
    subject_name, fault = _check_fault(fault, subject)
    headless = headless or as_json
    from oplab.demo import finished_summary, run_interactive, watch_headless

    settings = LabSettings()
    stack = Stack(settings)
    try:
        info = stack.up(fault=fault, mode="auto" if headless else "interactive", subject=subject_name,
                        progress=_progress)
    except StackError as exc:
        _fail(str(exc))
    viewer = replace(info, nats_url=stack.nats_url(info, "viewer"))  # what watching the run takes
    try:
        if headless:
            def chapter(line: str) -> None:
                typer.echo(line, err=as_json)

            summary = asyncio.run(watch_headless(viewer, chapter, settings.demo_timeout_s))
        else:
            _log_to_file(stack.home / "logs" / "console.log")
            asyncio.run(run_interactive(viewer))
            summary = asyncio.run(finished_summary(viewer))
    except KeyboardInterrupt:
        summary = {"run": info.run, "outcome": "interrupted"}
    finally:
        exported = _export_compose_run(viewer, stack.home)
        stack.down(progress=_progress)
    if exported is not None:
        _import_compose_run(exported, settings)
    if not headless:
        outcome = summary.get("outcome") or "unfinished"
        typer.echo(f"run {info.run}: {outcome}.\n"
                   f"  replay it:  oplab console --run {info.run} --replay\n"
                   f"  read it:    oplab events {info.run}")
    if headless:
        keys = ("run", "fault", "ticket", "outcome", "resolved_by", "ttd_s", "ttm_s")
        line = {"subject": info.subject, **{k: summary.get(k) for k in keys}}
        if summary.get("control"):
            line["actions"] = summary.get("actions_after_fault")
        typer.echo(json.dumps(line))
        raise typer.Exit(0 if demo_succeeded(summary) else 1)


def _export_compose_run(info: StackInfo, home: Path) -> Path | None:
    """A run under compose: its events, read before the project (and its NATS) goes down."""
    from oplab.demo import export_for_replay

    if info.compose is None:
        return None
    try:
        return asyncio.run(export_for_replay(info, home))
    except Exception as exc:  # the run stays in the project's NATS volume
        _progress(f"could not copy run {info.run} out of the compose project ({exc}); it stays in the "
                  "project's NATS volume")
        return None


def _import_compose_run(path: Path, settings: LabSettings) -> None:
    from oplab.archive import ArchiveError
    from oplab.demo import import_for_replay

    try:
        stored = import_for_replay(path, settings)
    except ArchiveError as exc:
        _progress(f"the run's events are in {path}, not in the local log ({exc}): `oplab import {path}`")
        return
    _progress(f"copied {stored} events of the run into the local log (also kept in {path})")


def demo_succeeded(summary: dict[str, Any]) -> bool:
    """An incident run succeeds when the agent resolved it; a control run when nobody acted."""
    if summary.get("control"):
        return summary.get("outcome") == "no_action" and not summary.get("open_tickets")
    return summary.get("outcome") == "resolved" and summary.get("resolved_by") == "agent"


# -- subjects ------------------------------------------------------------------------


@app.command()
def subjects(as_json: JsonOpt = False) -> None:
    """The systems under test this lab knows (installed subject packages), with their faults,
    invariants and tools."""
    from oplab.catalogue import describe_subjects

    docs, broken = describe_subjects()
    for b in broken:
        typer.secho(f"error: subject {b['name']!r} (package {b['package']}) cannot be loaded: {b['error']}",
                    fg=typer.colors.RED, err=True)
    if as_json:
        typer.echo(json.dumps([*docs, *broken]))
        return
    for doc in docs:
        typer.secho(doc["name"], bold=True, nl=False)
        typer.echo(f"  {doc['description']}")
        typer.echo(f"  scenarios: {', '.join(doc['scenarios']) or 'none'}")
        typer.echo("  faults:")
        for f in doc["faults"]:
            typer.echo(f"    {f['kind']:<20} ttl {f['default_ttl_s']:>4g}s  {f['description']}")
        typer.echo("  invariants:")
        for i in doc["invariants"]:
            typer.echo(f"    {i['name']:<20} {i['description']}")
        typer.echo("  tools:")
        for t in doc["tools"]:
            typer.echo(f"    {t['name']:<20} {'mutating ' if t['mutating'] else 'read-only'}  {t['description']}")
    if not docs:
        typer.echo("no subjects installed")


# -- runs and replay ---------------------------------------------------------------


@app.command()
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


@app.command()
def events(run: Annotated[str, typer.Argument(help="Run id (see `oplab runs`)")],
           type_: Annotated[list[str] | None, typer.Option(
               "--type", help="Event type, glob (ticket.*) or domain; repeatable")] = None,
           correlation: Annotated[str | None, typer.Option(help="Only events about this ticket or fault id")] = None,
           source: Annotated[str | None, typer.Option(help="Only events this service recorded")] = None,
           since: Annotated[str | None, typer.Option(help="From: a sequence, a time or an age (-30s)")] = None,
           until: Annotated[str | None, typer.Option(help="Up to: a sequence, a time or an age")] = None,
           as_json: JsonOpt = False) -> None:
    """Replay one run's events from the log, in order (``--json``: one object per line, with ``seq``)."""
    from events.envelope import utcnow
    from oplab.access import lab_nats_url
    from oplab.event_query import EventQuery, parse_position
    from oplab.history import describe, run_history

    with lab_nats_url(LabSettings()) as url:
        everything = asyncio.run(run_history(url, run))
    if not everything:
        _fail(f"no events for run {run!r} (`oplab runs` lists the recorded runs)")
    now, day = utcnow(), everything[0][1].time
    try:
        query = EventQuery(types=tuple(type_ or ()), correlation=correlation, source=source,
                           since=parse_position(since, now=now, day=day) if since else None,
                           until=parse_position(until, now=now, day=day) if until else None)
    except ValueError as exc:
        _fail(str(exc), 2)
    history = [(seq, event) for seq, event in everything if query.matches(seq, event)]
    if not history and type_ and not query.types_known({e.type for _, e in everything}):
        known = sorted({e.type for _, e in everything})
        _fail(f"run {run} has no events of type {', '.join(type_)}; it has: {', '.join(known)}", 2)
    for seq, event in history:
        if as_json:
            typer.echo(json.dumps({"seq": seq, **event.model_dump(mode="json")}))
        else:
            typer.echo(f"{seq:>7} {event.time:%H:%M:%S.%f}"[:-3] + f" {event.type:<26} {describe(event)}")


@app.command()
def export(run: Annotated[str, typer.Argument(help="Run id (see `oplab runs`)")],
           output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default: stdout)")] = None,
           ) -> None:
    """Write one run's events, as stored, to a JSON-lines file (`oplab import` reads it back)."""
    from events.ids import is_token
    from oplab.access import lab_nats_url
    from oplab.archive import export_run

    if not is_token(run):
        _fail(f"{run!r} is not a run id (`oplab runs` lists the recorded runs)", 2)
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
        _fail(f"no events for run {run!r} (`oplab runs` lists the recorded runs)")
    if partial is not None and output is not None:
        partial.replace(output)  # only a complete export takes the file's name
        typer.echo(f"exported {count} events of run {run} to {output}", err=True)


@app.command("import")
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
        _fail(str(exc))
    except ArchiveError as exc:
        _fail(str(exc), 2)
    notes = [f"{done.already} were already in the log"] if done.already else []
    if archive.undecodable:
        notes.append(f"{archive.undecodable} are not events and were kept as they were stored")
    _emit({"run": done.run, "events": done.stored, "already": done.already, "undecodable": archive.undecodable},
          as_json, f"imported run {done.run}: {done.stored} events" + (f" ({'; '.join(notes)})" if notes else "")
          + f"; `oplab events {done.run}`, `oplab console --run {done.run} --replay`")


@app.command()
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
    _log_to_file(settings.home.resolve() / "logs" / "console.log")
    with lab_nats_url(settings) as url:
        if not run:  # e.g. `docker compose run --rm console`: the run the lab is playing
            recorded = asyncio.run(list_runs(url))
            if not recorded:
                _fail("no run given, none running and none recorded yet: start one (`oplab up`)", 2)
            run = max(recorded, key=lambda r: r["started"])["run"]
        asyncio.run(open_console(url, run, replay=replay))


# -- approvals (manual approval mode) ---------------------------------------------------


RunOpt = Annotated[str | None, typer.Option(help="Run id (default: the running stack's, else every run)")]


@app.command()
def approve(action_id: Annotated[str, typer.Argument(help="Action id (shown by the agent and the console)")],
            run: RunOpt = None, as_json: JsonOpt = False) -> None:
    """Approve an action an agent is waiting on (OPLAB_APPROVAL=manual): the agent runs it."""
    _decide(action_id, approve=True, reason="", run=run, as_json=as_json)


@app.command()
def reject(action_id: Annotated[str, typer.Argument(help="Action id (shown by the agent and the console)")],
           reason: Annotated[str, typer.Option("--reason", help="Why: the agent (and the model) gets it back")],
           run: RunOpt = None, as_json: JsonOpt = False) -> None:
    """Reject an action an agent is waiting on: it does not run, and the agent is told why."""
    if not reason.strip():
        _fail("--reason must say why", 2)
    _decide(action_id, approve=False, reason=reason, run=run, as_json=as_json)


def _decide(action_id: str, *, approve: bool, reason: str, run: str | None, as_json: bool) -> None:
    import getpass

    from events.bus import Bus
    from events.settings import BusSettings
    from oplab.access import lab_nats_url
    from projections.tickets import IllegalTransition
    from projections.tickets.approvals import ActionNotFound, decide, find_action

    settings = LabSettings()
    stack = Stack(settings)
    info = stack.info()
    run = run or (info.run if info is not None and stack.running() else None)
    by = f"cli:{getpass.getuser()}"

    async def go(url: str) -> dict[str, Any]:
        bus = await Bus.connect(BusSettings(nats_url=url), source="oplab-cli", ensure_stream=False)
        try:
            ref = await find_action(bus, action_id, run)
            await decide(bus, ref, approve=approve, by=by, reason=reason)
            return {"run": ref.run, "ticket": ref.ticket_id, "action": action_id, "tool": ref.tool,
                    "decision": "approved" if approve else "rejected", "by": by, "reason": reason or None}
        finally:
            await bus.close()

    try:
        with lab_nats_url(settings, "operator") as url:
            doc = asyncio.run(go(url))
    except (ActionNotFound, IllegalTransition) as exc:
        _fail(str(exc))
    _emit(doc, as_json, f"{doc['decision']} {action_id} ({doc['tool']} on ticket {doc['ticket']}, run {doc['run']})")


# -- tickets -------------------------------------------------------------------------


@tickets_app.command("list")
def tickets_list(run: Annotated[str | None, typer.Option(help="Only this run (default: all)")] = None,
                 status_: Annotated[str | None, typer.Option("--status")] = None,
                 limit: int = 50, as_json: JsonOpt = False) -> None:
    """Tickets from the ticket log, newest first."""
    from oplab.access import lab_nats_url
    from oplab.tickets import list_tickets

    settings = LabSettings()
    try:
        rows = list_tickets(run=run, status=status_, limit=limit, nats_url=lambda: lab_nats_url(settings),
                            notice=_progress)
    except ValueError as exc:
        _fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    if not rows:
        typer.echo("no tickets")
        return
    width = max(len(f"{r.invariant}/{r.entity}") for r in rows)
    for r in rows:
        what = f"{r.invariant}/{r.entity}"
        typer.echo(f"{r.ticket_id}  {r.status:<11} {what:<{width}}  {r.opened_at:%Y-%m-%d %H:%M:%S}  "
                   f"{r.resolved_by or r.outcome_note or ''}")


@tickets_app.command("show")
def tickets_show(ticket_id: str, as_json: JsonOpt = False) -> None:
    """One ticket in full."""
    from oplab.access import lab_nats_url
    from oplab.tickets import get_ticket

    settings = LabSettings()
    row = get_ticket(ticket_id, nats_url=lambda: lab_nats_url(settings), notice=_progress)
    if row is None:
        _fail(f"no ticket {ticket_id!r} in the ticket log")
    assert row is not None
    if as_json:
        typer.echo(row.model_dump_json())
        return
    doc = row.model_dump(mode="json", exclude={"actions"})
    for key, value in doc.items():
        if value is not None:
            typer.echo(f"{key:>13}: {value}")
    for i, action in enumerate(row.actions, start=1):
        args = ", ".join(f"{k}={v!r}" for k, v in action.args.items())
        result = {True: "ok", False: "failed", None: action.status}[action.ok]
        typer.echo(f"{'action ' + str(i):>13}: {action.tool}({args}) -> {result}")


# -- chaos -----------------------------------------------------------------------------


def _chaos(verb: str, body: dict[str, Any]) -> dict[str, Any]:
    from events.bus import Bus
    from events.commands import CommandError, request
    from events.settings import BusSettings

    stack = _stack()
    url = stack.nats_url(stack.require(), "operator")

    async def call() -> dict[str, Any]:
        bus = await Bus.connect(BusSettings(nats_url=url), source="oplab-cli", ensure_stream=False)
        try:
            return await request(bus.nc, "chaos", verb, body)
        finally:
            await bus.close()

    try:
        return asyncio.run(call())
    except CommandError as exc:
        _fail(exc.description, 2 if exc.code == "400" else 1)
    raise AssertionError("unreachable")


@chaos_app.command("list")
def chaos_list(as_json: JsonOpt = False) -> None:
    """Active faults, fault kinds and targets."""
    try:
        doc = _chaos("list", {})
    except StackError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(doc))
        return
    typer.echo("active faults:" if doc["faults"] else "no active faults")
    for f in doc["faults"]:
        typer.echo(f"  {f['fault_id']}  {f['kind']:<14} {f['target']:<14} until {f['expires_at']}")
    typer.echo("kinds: " + ", ".join(k["kind"] for k in doc["kinds"]))
    typer.echo("targets: " + ", ".join(doc["targets"]))


@chaos_app.command("inject")
def chaos_inject(kind: str, target: Annotated[str | None, typer.Option()] = None,
                 ttl: Annotated[float | None, typer.Option(help="seconds")] = None,
                 param: Annotated[list[str] | None, typer.Option(help="k=v, repeatable")] = None,
                 as_json: JsonOpt = False) -> None:
    """Inject a fault now."""
    params: dict[str, Any] = {}
    for item in param or []:
        if "=" not in item:
            _fail(f"--param {item!r}: expected k=v", 2)
        k, v = item.split("=", 1)
        params[k] = _scalar(v)
    body: dict[str, Any] = {"kind": kind, "params": params}
    if target:
        body["target"] = target
    if ttl:
        body["ttl_s"] = ttl
    try:
        doc = _chaos("inject", body)
    except StackError as exc:
        _fail(str(exc))
    f = doc["fault"]
    _emit(doc, as_json, f"injected {f['fault_id']}: {f['kind']} on {f['target']} until {f['expires_at']}")


@chaos_app.command("revert")
def chaos_revert(fault_id: Annotated[str | None, typer.Argument()] = None,
                 all_faults: Annotated[bool, typer.Option("--all", help="every active fault")] = False,
                 as_json: JsonOpt = False) -> None:
    """Revert an active fault (or, with --all, every one)."""
    if (fault_id is None) == (not all_faults):
        _fail("give a fault id or --all (not both)", 2)
    try:
        doc = _chaos("revert", {"all": True} if all_faults else {"fault_id": fault_id})
    except StackError as exc:
        _fail(str(exc))
    text = "reverted " + (", ".join(doc["reverted"]) or "nothing (no active fault)")
    if doc["failed"]:
        text += "; FAILED: " + ", ".join(doc["failed"])
    _emit(doc, as_json, text)
    if doc["failed"]:
        raise typer.Exit(1)


@app.command("nats-auth")
def nats_auth(directory: Annotated[Path, typer.Argument(help="Where the users and the server's config go")],
              port: int = 4222, http_port: int = 8222, route_port: int = 6222, store: Path = Path("/data"),
              cluster: Annotated[str, typer.Option(help="the cluster's hosts, comma-separated")] = "nats,nats-2,nats-3",
              as_json: JsonOpt = False) -> None:
    """Write a lab NATS's users (one password file per role) and its server configurations.

    For compose's one-shot ``nats-auth`` service: ``nats.conf`` for one server, and
    ``nats-cluster-N.conf`` for each member of a cluster of the ``--cluster`` hosts (the compose
    ``cluster`` profile). The passwords are the ones given in OPLAB_NATS_AUTH (JSON, from
    ``oplab up``), else those already in DIRECTORY, else new ones. No password is printed."""
    import os

    from oplab.nats_auth import ClusterNode, LabCredentials

    given = os.environ.get("OPLAB_NATS_AUTH")
    try:
        kept = LabCredentials.from_json(given) if given else LabCredentials.from_dir(directory)
    except ValueError as exc:
        _fail(f"OPLAB_NATS_AUTH: {exc}", 2)
    how = "given" if given else ("kept" if kept is not None else "generated")
    credentials = kept or LabCredentials.generate()
    credentials.write_dir(directory)
    credentials.write_server_config(directory / "nats.conf", port, store, host="0.0.0.0", http_port=http_port)
    hosts = [h.strip() for h in cluster.split(",") if h.strip()]
    routes = tuple(f"{h}:{route_port}" for h in hosts)
    for n, host in enumerate(hosts, start=1):
        credentials.write_server_config(directory / f"nats-cluster-{n}.conf", port, store, host="0.0.0.0",
                                        http_port=http_port,
                                        cluster=ClusterNode(host, route_port, routes, host="0.0.0.0"))
    _emit({"directory": str(directory), "roles": sorted(credentials.passwords), "passwords": how}, as_json,
          f"NATS users for {len(credentials.passwords)} roles in {directory} ({how} passwords); "
          f"server config {directory / 'nats.conf'}")


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main() -> None:
    import logging

    from services.runtime.logging import configure_logging

    configure_logging("kv", "WARNING")
    logging.getLogger("events.bus").setLevel(logging.ERROR)  # reconnect chatter is not for CLI users
    from events.bus import BusRefused

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except BusRefused as exc:  # any command, any NATS: the reason and what to do, no traceback
        typer.secho(f"error: {exc}. Under compose, the viewer's password is in the lab's volume: "
                    "`docker compose run --rm -T console cat /auth/viewer`", fg=typer.colors.RED, err=True)
        sys.exit(1)

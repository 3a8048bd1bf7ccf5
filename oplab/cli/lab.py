"""Running the lab: ``up``, ``down``, ``status``, ``restart``, ``logs``, ``demo``, ``subjects``, ``nats-auth``."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from oplab.cli.common import JsonOpt, emit, fail, log_to_file, print_listing, progress, stack, stdout_console, table
from oplab.probes import redacted
from oplab.settings import LabSettings
from oplab.stack import Stack, StackInfo
from subjects.registry import DEFAULT_SUBJECT

SubjectOpt = Annotated[str | None, typer.Option(
    "--subject", help=f"System under test (`oplab subjects`; default: OPLAB_SUBJECT, else {DEFAULT_SUBJECT})")]
FaultOpt = Annotated[str | None, typer.Option(help="Fault the director injects (default: the scenario's)")]


def register(app: typer.Typer) -> None:
    for command in (up, down, status, restart, logs, demo, subjects):
        app.command()(command)
    app.command("nats-auth")(nats_auth)


def _subject(name: str | None) -> Any:
    """The subject called ``name`` (default: ``OPLAB_SUBJECT``, else the default subject); exit 2 if unknown."""
    from subjects.registry import UnknownSubject, load_subject

    try:
        return load_subject(name or LabSettings().subject)
    except UnknownSubject as exc:
        fail(str(exc), 2)


def check_fault(fault: str | None, subject_name: str | None) -> tuple[str, str]:
    """(subject, fault): ``fault`` checked against the subject's catalogue and its scenario
    (default: the scenario's default fault). Exit 2 with the choices if it is not there."""
    from services.director.scenario import ScenarioError, load_scenario

    subject = _subject(subject_name)
    try:
        scenario = load_scenario(LabSettings().scenario, subject)
    except ScenarioError as exc:
        fail(str(exc), 2)
    fault = fault or scenario.default_fault
    kinds = subject.catalogue().fault_kinds()
    if fault not in kinds:
        fail(f"unknown fault {fault!r} for subject {subject.name}; choose one of: {', '.join(kinds)}", 2)
    if fault not in scenario.faults:
        fail(f"scenario {scenario.name} does not play fault {fault!r}; it plays: {', '.join(scenario.faults)}", 2)
    return subject.name, fault


def up(fault: FaultOpt = None,
       mode: Annotated[Literal["interactive", "auto"], typer.Option(
           help="Director: interactive (waits for `oplab console` keys) | auto (plays the scenario now)")
       ] = "interactive",
       subject: SubjectOpt = None,
       as_json: JsonOpt = False) -> None:
    """Start infrastructure and every service under supervisord (a new run of one subject)."""
    subject_name, fault = check_fault(fault, subject)
    info = stack().up(fault=fault, mode=mode, subject=subject_name, progress=progress)
    nats = redacted(info.nats_url)
    endpoints = {name: redacted(url) for name, url in info.endpoints.items()}
    where = ", ".join(f"{name} {url}" for name, url in endpoints.items())
    emit({"run": info.run, "subject": info.subject, "fault": info.fault, "nats_url": nats, "endpoints": endpoints},
         as_json, f"run {info.run} ({info.subject}) is up: NATS {nats}" + (f"; {where}" if where else "")
         + "; `oplab status`, `oplab down`")


def down() -> None:
    """Stop every service (cleanly, SIGTERM) and the embedded infrastructure."""
    stopped = stack().down(progress=progress)
    typer.echo("stopped" if stopped else "nothing was running")


def status(as_json: JsonOpt = False) -> None:
    """Processes of the running stack."""
    lab = stack()
    info = lab.require()
    procs = lab.processes(info)
    if as_json:
        typer.echo(json.dumps({"run": info.run, "subject": info.subject, "processes": procs}))
        return
    console = stdout_console()
    console.print(f"run {info.run}  subject {info.subject}  fault {info.fault}  mode {info.mode}", markup=False)
    print_listing(console, table(("process", "state", "description"),
                                 ((p["name"], str(p["state"]), str(p["description"])) for p in procs)))


def restart(service: str) -> None:
    """Restart one service (or node) of the running stack."""
    stack().restart(service)
    typer.echo(f"restarted {service}")


def logs(service: str,
         follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
         lines: Annotated[int, typer.Option("-n", "--lines")] = 40) -> None:
    """Show a service's log (under .oplab/logs/)."""
    _tail(stack().log_file(service), lines, follow)


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


def demo(fault: Annotated[str | None, typer.Option(
             help="Fault to play (see `oplab subjects`; default: the scenario's)")] = None,
         headless: Annotated[bool, typer.Option(help="No console: auto mode, chapters printed, JSON last")] = False,
         as_json: Annotated[bool, typer.Option("--json", help="Headless, and stdout holds only the JSON "
                                                              "summary (chapters go to stderr)")] = False,
         subject: SubjectOpt = None,
         approve: Annotated[bool, typer.Option(
             "--approve", help="The agent's remedies wait for your approval in the console (a / r): "
                               "OPLAB_APPROVAL=manual for this run")] = False,
         ) -> None:
    """Bring the stack up for one run, play the scenario, bring it down.

    Headless: exit 0 only if the agent resolved the ticket (for a control
    fault, which breaks nothing: only if nobody took a mutating action).
    """
    subject_name, fault = check_fault(fault, subject)
    headless = headless or as_json
    if approve and headless:
        fail("--approve needs the console: in a headless run nobody is there to approve", code=2)
    from oplab.demo import finished_summary, run_interactive, watch_headless

    settings = LabSettings(**({"approval": "manual"} if approve else {}))
    lab = Stack(settings)
    info = lab.up(fault=fault, mode="auto" if headless else "interactive", subject=subject_name, progress=progress)
    # what watching the run takes; deciding on the agent's actions (a / r) writes to its tickets
    role = "operator" if settings.approval == "manual" and not headless else "viewer"
    viewer = replace(info, nats_url=lab.nats_url(info, role))
    try:
        if headless:
            def chapter(line: str) -> None:
                typer.echo(line, err=as_json)

            summary = asyncio.run(watch_headless(viewer, chapter, settings.demo_timeout_s))
        else:
            log_to_file(lab.home / "logs" / "console.log")
            asyncio.run(run_interactive(viewer))
            summary = asyncio.run(finished_summary(viewer))
    except KeyboardInterrupt:
        summary = {"run": info.run, "outcome": "interrupted"}
    finally:
        exported = _export_compose_run(viewer, lab.home)
        lab.down(progress=progress)
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
        progress(f"could not copy run {info.run} out of the compose project ({exc}); it stays in the "
                 "project's NATS volume")
        return None


def _import_compose_run(path: Path, settings: LabSettings) -> None:
    from oplab.archive import ArchiveError
    from oplab.demo import import_for_replay

    try:
        stored = import_for_replay(path, settings)
    except ArchiveError as exc:
        progress(f"the run's events are in {path}, not in the local log ({exc}): `oplab import {path}`")
        return
    progress(f"copied {stored} events of the run into the local log (also kept in {path})")


def demo_succeeded(summary: dict[str, Any]) -> bool:
    """An incident run succeeds when the agent mitigated it and resolved its ticket; a control run
    when nobody acted - the success its trial score gives (``projections.timeline.summary_succeeded``)."""
    from projections.timeline import summary_succeeded

    return summary_succeeded(summary)


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
    from rich.padding import Padding
    from rich.text import Text

    console = stdout_console()
    for doc in docs:
        console.print(Text.assemble((doc["name"], "bold"), f"  {doc['description']}"))
        console.print(f"  scenarios: {', '.join(doc['scenarios']) or 'none'}", markup=False)
        for listing in (
            table(("fault", "ttl", "trips", "description"),
                  ((f["kind"], f"{f['default_ttl_s']:g}s", f["detected_by"] or "nothing (control)", f["description"])
                   for f in doc["faults"]), title="faults", right=("ttl",)),
            table(("invariant", "description"), ((i["name"], i["description"]) for i in doc["invariants"]),
                  title="invariants"),
            table(("tool", "access", "description"),
                  ((t["name"], "mutating" if t["mutating"] else "read-only", t["description"]) for t in doc["tools"]),
                  title="tools"),
        ):
            print_listing(console, Padding(listing, (0, 0, 0, 2), expand=False))
    if not docs:
        typer.echo("no subjects installed")


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
        fail(f"OPLAB_NATS_AUTH: {exc}", 2)
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
    emit({"directory": str(directory), "roles": sorted(credentials.passwords), "passwords": how}, as_json,
         f"NATS users for {len(credentials.passwords)} roles in {directory} ({how} passwords); "
         f"server config {directory / 'nats.conf'}")

"""``oplab report RUN``: one run's report; ``oplab eval report ID``: a campaign's. Both are
self-contained HTML (charts as PNG data URIs) and Markdown with its PNGs beside it
(:mod:`oplab.reports`). Exit 1 when the log holds nothing of the run or campaign."""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oplab.cli.common import JsonOpt, emit, fail, progress
from oplab.cli.eval import eval_app
from oplab.settings import LabSettings

if TYPE_CHECKING:
    from events import Event
    from oplab.reports.document import Document


class Format(StrEnum):
    html = "html"
    md = "md"


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    eval_app.command("report")(eval_report)


def report(run: Annotated[str, typer.Argument(help="Run id (see `oplab runs`)")],
           fmt: Annotated[Format, typer.Option("--format", help="html (self-contained) or md (PNGs beside it)")]
           = Format.html,
           out: Annotated[Path | None, typer.Option(
               help="File to write (default report-RUN.html / .md; '-': the HTML page on stdout)")]
           = None,
           as_json: JsonOpt = False) -> None:
    """A finished (or running) run's report: a workload timeline chart with the fault, the ticket,
    each action and the clear marked; the ticket's story; the agent's transcript; the scores."""
    from events.ids import is_token
    from oplab.access import lab_nats_url
    from oplab.reports.reading import read_run
    from oplab.reports.run_facts import fold_run
    from oplab.reports.run_report import run_document

    if not is_token(run):
        fail(f"{run!r} is no run id (run ids look like r20261124t2358-ab12; `oplab runs` lists them)", 2)
    if out is not None and str(out) == "-" and (as_json or fmt is Format.md):
        fail("--out - prints the HTML page on stdout: not with --json, and not for Markdown, whose charts "
             "are files beside it (give --out FILE.md)", 2)
    progress(f"reading run {run}")
    with lab_nats_url(LabSettings()) as url:
        events = asyncio.run(read_run(url, run))
    if events and all(e.type.startswith("campaign.") for e in events):
        fail(f"{run} is a campaign, not a run: `oplab eval report {run}` writes its report", 2)
    facts = fold_run(events, run)
    if facts is None:
        fail(f"no events for run {run!r} (`oplab runs` lists the recorded runs)")
    progress(f"{facts.events} events; drawing the charts")
    doc = run_document(facts)
    target = out if out is not None else Path(f"report-{run}.{fmt.value}")
    files = _write(doc, fmt, target)
    if not files:  # the page went to stdout
        return
    score = facts.score
    emit({"run": run, "format": fmt.value, "out": str(target), "files": [str(f) for f in files],
          "verdict": score.verdict if score else None, "ticket": score.ticket if score else None,
          "ttd_s": score.ttd_s if score else None, "ttm_s": score.ttm_s if score else None},
         as_json, f"wrote {', '.join(str(f) for f in files)}")


def eval_report(campaign: Annotated[str, typer.Argument(help="Campaign id (printed by `oplab eval`)")],
                out: Annotated[Path | None, typer.Option(help="Folder to write into (default report-ID)")] = None,
                trial_reports: Annotated[bool, typer.Option(
                    "--trial-reports/--no-trial-reports",
                    help="Also write each trial's run report (runs/RUN.html), linked from the trials table")]
                = True,
                as_json: JsonOpt = False) -> None:
    """A campaign's report: report.md and report.html (self-contained) with the success heatmap,
    TTD/TTM per cell, cost against success, the scoreboard and a row per trial."""
    from events.ids import is_token
    from oplab.access import lab_nats_url
    from oplab.reports.campaign_report import campaign_document
    from oplab.reports.reading import read_campaign

    if not is_token(campaign):
        fail(f"{campaign!r} is no campaign id (campaign ids look like c20261207t170000-ab12)", 2)
    progress(f"reading campaign {campaign}")
    with lab_nats_url(LabSettings()) as url:
        log = asyncio.run(read_campaign(url, campaign))
    if log.campaign_events == 0:
        fail(f"no events for campaign {campaign!r} (`oplab eval` prints a campaign's id when it starts)")
    board = log.fold.scoreboard()
    folder = out if out is not None else Path(f"report-{campaign}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot write the report into {folder}: {exc.strerror or exc}")
    links = _trial_reports(log.runs, board_runs=[t.run for t in board.trials if t.run], folder=folder) \
        if trial_reports else {}
    progress("drawing the campaign's charts")
    doc = campaign_document(board, links)
    files = _write(doc, Format.md, folder / "report.md") + _write(doc, Format.html, folder / "report.html")
    emit({"campaign": campaign, "out": str(folder), "files": [str(f) for f in files],
          "trial_reports": len(links), "trials": len(board.trials), "done": board.done},
         as_json, f"wrote {folder / 'report.html'} and {folder / 'report.md'} "
                  f"({len(files) - 2} chart file(s), {len(links)} trial report(s))")


def _trial_reports(runs: dict[str, list[Event]], board_runs: list[str], folder: Path) -> dict[str, str]:
    """Each trial run's HTML report under ``folder/runs``; returns run -> relative link."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from oplab.reports.html import render_html
    from oplab.reports.run_facts import fold_run
    from oplab.reports.run_report import run_document

    links: dict[str, str] = {}
    todo = [r for r in board_runs if runs.get(r)]
    if not todo:
        return links
    (folder / "runs").mkdir(exist_ok=True)
    columns = (TextColumn("  trial reports"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=len(todo))
        for run in todo:
            bar.update(task, description=run)
            facts = fold_run(runs[run], run)
            if facts is not None:
                (folder / "runs" / f"{run}.html").write_text(render_html(run_document(facts)), encoding="utf-8")
                links[run] = f"runs/{run}.html"
            bar.advance(task)
    return links


def _write(doc: Document, fmt: Format, target: Path) -> list[Path]:
    """Write ``doc`` as ``fmt`` to ``target`` ('-': the HTML on stdout); returns the files written."""
    from oplab.reports.html import render_html
    from oplab.reports.markdown import write_markdown

    if str(target) == "-":
        sys.stdout.write(render_html(doc))
        return []
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt is Format.html:
            target.write_text(render_html(doc), encoding="utf-8")
            return [target]
        return write_markdown(doc, target)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")

"""``oplab eval [run]``: run an evaluation campaign, or resume one (``--resume ID``).

Bad input (an unknown subject, fault, policy form or agent setting, repeats < 1, a bad campaign
file) exits 2 with the choices before anything starts. Progress goes to stderr: a rich progress
bar on a terminal (trials done / total, the current trial, an ETA), one line per trial otherwise.
stdout ends with the scoreboard: the table of ``oplab eval show`` (:mod:`oplab.cli.eval_show`), or
(``--json``) one JSON object on the last line.
Exit 0 once every trial ran (whatever the scores), 1 if the campaign could not run, 130 when
interrupted (it says how to resume).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from oplab.cli.common import JsonOpt, fail, stdout_console
from oplab.cli.eval import eval_app
from oplab.settings import LabSettings
from subjects.registry import DEFAULT_SUBJECT


@eval_app.command("run")
def run(
    faults: Annotated[str | None, typer.Option(
        help="Faults, comma-separated (`oplab subjects`; default: every fault of the subject's scenario)")] = None,
    policies: Annotated[str | None, typer.Option(
        help="Operator variants, comma-separated: rules, claude:<model>, replay:<run> (default: rules)")] = None,
    repeats: Annotated[int | None, typer.Option(help="Seeded repeats of each (fault, variant) (default 1)")] = None,
    seed: Annotated[int | None, typer.Option(help="The campaign's seed; each trial's is derived from it")] = None,
    noise: Annotated[bool | None, typer.Option(
        "--noise/--no-noise", help="Run the subject's control burst alongside each real fault")] = None,
    parallel: Annotated[int | None, typer.Option(
        help="Trials at once, each on a slot of its own (infrastructure, services); at most one per CPU")] = None,
    subject: Annotated[str | None, typer.Option(
        help=f"System under test (default: OPLAB_SUBJECT, else {DEFAULT_SUBJECT})")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="A campaign file (.yaml or .toml): subject, faults, variants with settings, repeats...")] = None,
    resume: Annotated[str | None, typer.Option(
        help="Continue campaign ID where it was cut off (finished trials are not run again)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a campaign: faults x operator variants x seeded repeats, each trial a run in the log."""
    from oplab.campaign.plan import PlanError
    from oplab.campaign.runner import CampaignInterrupted, CampaignNotFound, resume_campaign, run_campaign
    from projections.scoreboard import scoreboard_json

    settings = LabSettings()
    if resume is not None:
        given = {"--faults": faults, "--policies": policies, "--repeats": repeats, "--seed": seed,
                 "--noise": noise, "--subject": subject, "--file": file}
        clash = [name for name, value in given.items() if value is not None]
        if clash:
            fail(f"--resume continues the campaign as planned: drop {', '.join(clash)}", 2)
    else:
        try:
            campaign = _planned(settings, faults, policies, repeats, seed, noise, parallel, subject, file)
        except PlanError as exc:
            fail(str(exc), 2)
        parallel = campaign.parallel
    if parallel is not None:
        _check_parallel(parallel)
    try:  # the watcher is closed (a bar stopped) before any message; a StackError is the entry point's
        with _watching() as watcher:
            if resume is not None:
                result = resume_campaign(resume, settings, watcher, parallel or 1)
            else:
                from events import new_campaign_id

                result = run_campaign(campaign, new_campaign_id(), settings, watcher)
    except CampaignInterrupted as exc:
        typer.secho(str(exc), fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(130) from None
    except CampaignNotFound as exc:
        fail(str(exc), 1)
    board = result.scoreboard
    if as_json:
        typer.echo(json.dumps(scoreboard_json(board)))
        return
    from oplab.cli.eval_show import print_scoreboard

    print_scoreboard(board, stdout_console())
    typer.echo(f"campaign {board.campaign}: {board.done}/{len(board.trials)} trials. Read it again: "
               f"`oplab eval show {board.campaign}`; report: `oplab eval report {board.campaign} --out DIR`")


def _planned(settings: LabSettings, faults: str | None, policies: str | None, repeats: int | None,
             seed: int | None, noise: bool | None, parallel: int | None, subject: str | None,
             file: Path | None) -> Any:
    """The campaign from the file (if any) with the flags on top; PlanError if it is not valid."""
    from oplab.campaign.plan import CampaignFile, load_campaign_file, parse_list, parse_variant, plan_campaign

    doc = load_campaign_file(file) if file is not None else CampaignFile()
    variants = ([parse_variant(p) for p in parse_list(policies) or []] if policies is not None
                else doc.parsed_variants() or [parse_variant("rules")])
    return plan_campaign(
        subject=subject or doc.subject or settings.subject, faults=parse_list(faults) or doc.faults,
        variants=variants, repeats=repeats if repeats is not None else (doc.repeats or 1),
        seed=seed if seed is not None else (doc.seed if doc.seed is not None else 1),
        noise=noise if noise is not None else bool(doc.noise),
        parallel=parallel if parallel is not None else (doc.parallel or 1), scenario=settings.scenario)


def _check_parallel(parallel: int) -> None:
    """Exit 2 unless ``parallel`` trials fit the machine: a trial keeps about a CPU busy (its subject's
    processes, six services, the workload), and an overloaded machine slows detection and skews the
    very times the campaign measures."""
    import os

    cpus = os.cpu_count() or 1
    if parallel < 1:
        fail(f"--parallel must be at least 1 (got {parallel})", 2)
    if parallel > cpus:
        fail(f"--parallel {parallel}: this machine has {cpus} CPU{'s' if cpus > 1 else ''}; at most one trial "
             "per CPU, or an overloaded machine skews the times measured", 2)


class _Lines:
    """One line per trial on stderr (not a terminal: CI, pipes)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def begin(self, campaign_id: str, total: int, done: int) -> None:
        self.total, self.done = total, done
        typer.echo(f"campaign {campaign_id}: {total} trials" + (f", {done} already done" if done else "")
                   + f" (Ctrl-C stops it; `oplab eval --resume {campaign_id}` continues it)", err=True)

    def trial_started(self, trial: Any, run: str) -> None:
        pass

    def trial_finished(self, trial: Any, run: str, outcome: str, wall_s: float) -> None:
        self.done += 1
        typer.echo(f"[{self.done}/{self.total}] trial {trial.trial}: {trial.fault} x {trial.variant} "
                   f"#{trial.repeat + 1} -> {outcome} ({wall_s:.1f}s, run {run})", err=True)

    def note(self, message: str) -> None:
        typer.secho(f"  {message}", fg=typer.colors.BRIGHT_BLACK, err=True)

    def close(self) -> None:
        pass


class _Bar(_Lines):
    """A rich progress bar on stderr: trials done / total, the current trial, an ETA."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
                                 transient=False)
        self.task: Any = None

    def begin(self, campaign_id: str, total: int, done: int) -> None:
        super().begin(campaign_id, total, done)
        self.progress.start()
        self.task = self.progress.add_task("starting", total=total, completed=done)

    def trial_started(self, trial: Any, run: str) -> None:
        self.progress.update(self.task, description=f"trial {trial.trial}: {trial.fault} x {trial.variant} "
                                                    f"#{trial.repeat + 1}")

    def trial_finished(self, trial: Any, run: str, outcome: str, wall_s: float) -> None:
        self.done += 1
        self.progress.console.print(f"trial {trial.trial}: {trial.fault} x {trial.variant} #{trial.repeat + 1} "
                                    f"-> {outcome} ({wall_s:.1f}s)", highlight=False)
        self.progress.advance(self.task)

    def note(self, message: str) -> None:
        if self.task is None:
            super().note(message)
        else:  # above the live bar, never lost under it
            self.progress.console.print(f"  {message}", style="bright_black", highlight=False)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


@contextmanager
def _watching() -> Iterator[_Lines]:
    """The campaign's watcher on stderr (a bar on a terminal, else lines), closed however the campaign ends."""
    watcher = _Bar() if sys.stderr.isatty() else _Lines()
    try:
        yield watcher
    finally:
        watcher.close()


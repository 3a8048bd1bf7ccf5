"""``oplab eval show ID [--json]``: a campaign's scoreboard, folded from the log.

The campaign's events and its trials' runs are read from the log (the running lab's NATS, else
``NATS_URL``, else the lab's own store: :func:`oplab.access.lab_nats_url`) and folded with
:class:`~projections.scoreboard.CampaignFold`: nothing is kept on the side, so what it prints is
what the log says now. Human output: a table with one row per (fault, variant) cell, then the
trials that failed with their reasons; ``--json``: the scoreboard as one JSON object.

Exit 0 with the scoreboard (whatever the scores); 1 for a campaign the log does not hold (the
campaigns it holds are listed on stderr); 2 for an id that cannot be one.

:func:`render_scoreboard` and :func:`render_failures` are the tables; :func:`print_scoreboard`
prints both as ``oplab eval`` does at the end of a campaign.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from oplab.cli.common import JsonOpt, fail, progress, stdout_console
from oplab.cli.eval import eval_app
from projections.scoreboard import Cell, Rate, Scoreboard, Trial
from projections.scores import TrialScore

_CONTROL = " (control)"


@eval_app.command("show")
def show(campaign: Annotated[str, typer.Argument(help="Campaign id (c…), as `oplab eval` printed it")],
         as_json: JsonOpt = False) -> None:
    """A campaign's scoreboard from the log: one row per fault x variant, then the failed trials and why."""
    from events.ids import is_token
    from oplab.access import lab_nats_url
    from oplab.settings import LabSettings

    if not is_token(campaign):
        fail(f"{campaign!r} is no campaign id (campaign ids look like c20261207t170000-ab12)", 2)
    with lab_nats_url(LabSettings()) as url:
        board, known = asyncio.run(_read(url, campaign))
    if board is None:
        listing = "\n".join(f"  {c['campaign']}  {c['started']}  {c['subject']}  {c['trials']} trials"
                            f"{'' if c['finished'] else '  (unfinished)'}" for c in known)
        fail(f"campaign {campaign} is not in the log. "
             + (f"The campaigns it holds:\n{listing}" if known else "It holds no campaign."), 1)
    if as_json:
        from projections.scoreboard import scoreboard_json

        typer.echo(json.dumps(scoreboard_json(board)))
        return
    print_scoreboard(board, stdout_console())


async def _read(nats_url: str, campaign: str) -> tuple[Scoreboard | None, list[dict[str, Any]]]:
    """The campaign's scoreboard, or None and the campaigns the log holds."""
    from events.bus import Bus
    from events.settings import BusSettings
    from oplab.campaign.record import SOURCE, read_campaign

    bus = await Bus.connect(BusSettings(nats_url=nats_url), source=SOURCE, ensure_stream=False)
    try:
        progress(f"reading campaign {campaign} from the log")
        fold = (await read_campaign(bus, campaign)).fold
        if fold.started is None:
            return None, await list_campaigns(bus)
        return fold.scoreboard(), []
    finally:
        await bus.close()


async def list_campaigns(bus: Any) -> list[dict[str, Any]]:
    """Every campaign the log holds, oldest first: id, start time, subject, trials planned, finished."""
    from events import CampaignFinished, CampaignStarted
    from events.replay import Delivered
    from events.subjects import any_run_type

    found: dict[str, dict[str, Any]] = {}

    async def handle(d: Delivered) -> None:
        data = d.event.data
        if isinstance(data, CampaignStarted):
            found[data.campaign] = {"campaign": data.campaign, "started": d.event.time.isoformat(timespec="seconds"),
                                    "subject": data.subject, "trials": len(data.plan), "finished": False}
        elif isinstance(data, CampaignFinished) and data.campaign in found:
            found[data.campaign]["finished"] = True

    await bus.replay([any_run_type(CampaignStarted), any_run_type(CampaignFinished)], handle)
    return list(found.values())


# -- the tables ------------------------------------------------------------------------------------


def render_scoreboard(board: Scoreboard) -> Table:
    """One row per (fault, variant) cell: trials finished of planned, success and mitigation rates with
    their 95 % Wilson intervals, TTD and TTM p50/p90, mean steps, unsafe actions, mean tokens, cost per
    incident the agent resolved. A control fault's success is "nobody acted"; it has no mitigation."""
    table = Table(title=_title(board), title_justify="left", header_style="bold")
    for name, justify in (("fault", "left"), ("variant", "left"), ("trials", "right"), ("success", "right"),
                          ("mitigated", "right"), ("TTD p50/p90", "right"), ("TTM p50/p90", "right"),
                          ("steps", "right"), ("unsafe", "right"), ("tokens", "right"),
                          ("cost/resolved", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for cell in board.cells:
        table.add_row(*_row(cell))
    return table


def render_failures(board: Scoreboard) -> Table | None:
    """The finished trials that did not succeed, each with its verdict and why; None if there are none."""
    failed = [(t, score) for t in board.trials if (score := t.score) is not None and not score.success]
    if not failed:
        return None
    table = Table(title="failed trials", title_justify="left", header_style="bold")
    for name in ("trial", "fault", "variant", "run", "verdict", "why"):
        table.add_column(name, overflow="fold")
    for trial, score in failed:
        table.add_row(*_failure(trial, score))
    return table


def print_scoreboard(board: Scoreboard, console: Console) -> None:
    """The scoreboard, then the failed trials, then what is still to run."""
    console.print(render_scoreboard(board))
    failures = render_failures(board)
    if failures is not None:
        console.print(failures)
    waiting = len(board.trials) - board.done
    if waiting:
        hint = "" if board.finished and not board.interrupted else f" (`oplab eval --resume {board.campaign}`)"
        console.print(f"{waiting} trial(s) not finished{hint}", highlight=False)


def _title(board: Scoreboard) -> str:
    state = "interrupted" if board.interrupted else "finished" if board.finished else "not finished"
    return (f"campaign {board.campaign}: {board.subject or '?'}, {board.done}/{len(board.trials)} trials, "
            f"{state}{', with noise' if board.noise else ''}")


def _row(cell: Cell) -> tuple[str, ...]:
    return (
        cell.fault + (_CONTROL if cell.control else ""), cell.variant, f"{cell.finished}/{cell.trials}",
        _rate(cell.success), "-" if cell.control else _rate(cell.mitigated),
        _pair(cell.ttd_p50, cell.ttd_p90), _pair(cell.ttm_p50, cell.ttm_p90),
        _number(cell.steps_mean), str(cell.unsafe_actions), _number(cell.tokens_mean, "{:.0f}"),
        "-" if cell.cost_per_resolved is None else f"${cell.cost_per_resolved:.4f}",
    )


def _failure(trial: Trial, score: TrialScore) -> tuple[str, ...]:
    return (str(trial.trial), trial.fault, f"{trial.variant} #{trial.repeat + 1}", trial.run or "-", score.verdict,
            score.failure or "-")


def _rate(rate: Rate) -> str:
    return rate.text() if rate.n else "-"


def _pair(p50: float | None, p90: float | None) -> str:
    if p50 is None or p90 is None:
        return "-"
    return f"{p50:.2f}/{p90:.2f}s"


def _number(value: float | None, form: str = "{:.1f}") -> str:
    return "-" if value is None else form.format(value)


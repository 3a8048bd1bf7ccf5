"""A campaign's report (``oplab eval report ID``) as a :class:`~oplab.reports.document.Document`,
from its :class:`~projections.scoreboard.Scoreboard`: the success rate per fault x variant as a
heatmap, TTD and TTM per cell as strip plots, cost against success per variant, the scoreboard
table (rates with Wilson intervals, p50/p90) and one row per trial linking its run. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from oplab.reports.charts import cost_chart, distribution_chart, heatmap_chart
from oplab.reports.document import Cell, Document, Figure, Heading, Link, Note, Paragraph, Table
from projections.scoreboard import Rate, Scoreboard, Trial


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def status_text(board: Scoreboard) -> str:
    if board.interrupted:
        return f"interrupted after {board.done} of {len(board.trials)} trials (resume with --resume {board.campaign})"
    if board.finished:
        return f"finished: {board.done} of {len(board.trials)} trials"
    return f"not finished: {board.done} of {len(board.trials)} trials so far"


def campaign_document(board: Scoreboard, run_links: Mapping[str, str] | None = None) -> Document:
    """The report; ``run_links`` maps a trial's run to where its run report is (a relative path)."""
    doc = Document(
        title=f"Campaign {board.campaign}",
        subtitle=f"{board.subject or 'unknown subject'} · {len(board.faults)} fault(s) x {len(board.variants)} "
                 f"variant(s) x {board.repeats} repeat(s) · seed {board.seed}"
                 + (" · with noise" if board.noise else "") + f" · {status_text(board)}")
    doc.add(Paragraph("Success: an incident trial succeeds when the invariant cleared after the operator's "
                      "mitigating action and the agent resolved the ticket; a control trial (a legitimate "
                      "burst) succeeds when the operator took no mutating action. Rates come with their 95 % "
                      "Wilson interval. Every figure is folded from the log (projections/scoreboard.py)."))
    finished = [t for t in board.trials if t.score is not None]
    if not finished:
        doc.add(Note("No trial of this campaign has finished yet: there is nothing to chart."))
    else:
        doc.add(Heading("Success per fault and variant"), _heatmap(board))
        doc.add(Heading("Time to detect and to mitigate"), _distributions(board))
        doc.add(Heading("Cost against success"), _cost(board))
    doc.add(Heading("Scoreboard"), _scoreboard(board))
    doc.add(Heading("Trials"), _trials(board, run_links or {}))
    return doc


def _heatmap(board: Scoreboard) -> Figure:
    counts = {(c.fault, c.variant): (c.success.successes, c.success.n) for c in board.cells}
    png = heatmap_chart(board.faults, board.variants, counts, title="success rate (k/n trials)")
    return Figure("success", png, "Success rate per fault x variant, each cell annotated with successes / "
                                  "finished trials (grey: none finished)")


def _distributions(board: Scoreboard) -> Figure:
    rows = []
    for cell in board.cells:
        scores = [t.score for t in board.trials
                  if t.fault == cell.fault and t.variant == cell.variant and t.score is not None]
        if not scores:
            continue
        rows.append((f"{cell.fault} · {cell.variant}", [s.ttd_s for s in scores if s.ttd_s is not None],
                     [s.ttm_s for s in scores if s.ttm_s is not None]))
    return Figure("ttd-ttm", distribution_chart(rows),
                  "Time to detect (fault injected → ticket opened) and to mitigate (ticket opened → violation "
                  "cleared after the first successful remedy began) per cell: each dot a trial, the bar the median")


def _cost(board: Scoreboard) -> Figure:
    points = []
    for variant in board.variants:
        scores = [t.score for t in board.trials if t.variant == variant and t.score is not None]
        if not scores:
            continue
        rate = Rate.of(sum(1 for s in scores if s.success), len(scores))
        points.append((variant, sum(s.cost_usd for s in scores) / len(scores), rate.rate or 0.0,
                       rate.low or 0.0, rate.high or 0.0))
    return Figure("cost", cost_chart(points), "Mean model cost per trial against the success rate, per variant "
                                              "(bars: 95 % Wilson interval)")


def _scoreboard(board: Scoreboard) -> Table:
    header = ["fault", "variant", "done", "success", "detected", "mitigated", "resolved by agent",
              "TTD p50/p90 s", "TTM p50/p90 s", "steps", "tool errors", "unsafe", "tokens", "cost / resolved"]
    rows: list[list[Cell]] = [
        [c.fault + (" (control)" if c.control else ""), c.variant, f"{c.finished}/{c.trials}", c.success.text(),
         c.detected.text(), c.mitigated.text(), c.resolved_by_agent.text(), f"{_s(c.ttd_p50)} / {_s(c.ttd_p90)}",
         f"{_s(c.ttm_p50)} / {_s(c.ttm_p90)}", _s(c.steps_mean), str(c.tool_errors), str(c.unsafe_actions),
         "-" if c.tokens_mean is None else f"{c.tokens_mean:.0f}", _usd(c.cost_per_resolved)]
        for c in board.cells]
    return Table(header, rows)


def _trials(board: Scoreboard, run_links: Mapping[str, str]) -> Table:
    header = ["#", "fault", "variant", "repeat", "seed", "run", "outcome", "verdict", "TTD s", "TTM s", "cost",
              "why it failed"]
    return Table(header, [_trial_row(t, run_links) for t in board.trials])


def _trial_row(trial: Trial, run_links: Mapping[str, str]) -> list[Cell]:
    run: Cell = "-"
    if trial.run is not None:
        run = Link(trial.run, run_links[trial.run]) if trial.run in run_links else trial.run
    score = trial.score
    return [str(trial.trial), trial.fault, trial.variant, str(trial.repeat), str(trial.seed), run,
            trial.outcome or ("running or cut off" if trial.run else "not started"),
            score.verdict if score else "-", _s(score.ttd_s) if score else "-", _s(score.ttm_s) if score else "-",
            _usd(score.cost_usd) if score else "-", (score.failure or "") if score else ""]

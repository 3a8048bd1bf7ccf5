"""CampaignFold and the scoreboard: a campaign's events and its trials' runs folded into trials and
cells, with Wilson intervals, percentiles and cost per resolved incident."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from events import Event
from projections.scoreboard import CampaignFold, Rate, Scoreboard, percentile, scoreboard_json, wilson
from projections.scores import TrialScorer
from tests.projections.campaigns import VARIANTS, SyntheticCampaign, trial_run

CAMPAIGN = "c20261207t170000-ab12"
SYNTHETIC = SyntheticCampaign(CAMPAIGN, "r-c")
RUNS = SYNTHETIC.trial_runs()


def campaign_events(**kw: Any) -> list[Event]:
    return SYNTHETIC.campaign_events(**kw)


def fold(events: list[Event]) -> Scoreboard:
    folder = CampaignFold(CAMPAIGN)
    for event in events:
        folder.apply(event)
    return folder.scoreboard()


def whole_campaign() -> list[Event]:
    return [*campaign_events(), *SYNTHETIC.run_events()]


def cell(board: Scoreboard, fault: str, variant: str) -> Any:
    return next(c for c in board.cells if (c.fault, c.variant) == (fault, variant))


# -- intervals and percentiles ---------------------------------------------------------------------


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    (3, 5, 0.2307, 0.8824), (5, 5, 0.5655, 1.0), (0, 5, 0.0, 0.4345), (1, 2, 0.0945, 0.9055)])
def test_the_wilson_interval_matches_the_textbook_values(successes: int, n: int, low: float, high: float) -> None:
    interval = wilson(successes, n)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=1e-4)


def test_no_trials_have_no_interval_and_no_rate() -> None:
    assert wilson(0, 0) is None
    assert Rate.of(0, 0).text() == "-" and Rate.of(0, 0).rate is None


def test_a_rate_reads_as_count_percentage_and_interval() -> None:
    assert Rate.of(3, 5).text() == "3/5 60% [23-88%]"


def test_percentiles_interpolate_between_order_statistics() -> None:
    assert (percentile([4, 1, 3, 2], 50), percentile([1, 2, 3, 4], 90)) == (2.5, 3.7)
    assert (percentile([7.0], 90), percentile([], 50)) == (7.0, None)


# -- the fold --------------------------------------------------------------------------------------


def test_every_planned_trial_is_listed_and_only_finished_ones_are_scored() -> None:
    board = fold(whole_campaign())
    assert [t.trial for t in board.trials] == [0, 1, 2, 3, 4, 5]
    assert [t.run for t in board.trials] == ["r-c-t0", "r-c-t1", None, "r-c-t3", "r-c-t4", "r-c-t5"]
    unfinished = board.trials[2]
    assert (unfinished.finished, unfinished.score) == (False, None)
    assert board.done == 5 and board.finished and not board.interrupted


def test_each_trials_score_is_its_runs_score() -> None:
    board = fold(whole_campaign())
    for trial in board.trials:
        if trial.trial in RUNS:
            assert trial.score == TrialScorer.of(RUNS[trial.trial].events, control=trial.fault == "hot_key_burst",
                                                 fault=trial.fault)
    assert [t.score.verdict for t in board.trials if t.score] == [
        "mitigated", "self_healed", "mitigated", "escalated", "false_positive"]


def test_a_cells_rates_count_its_finished_trials() -> None:
    rules = cell(fold(whole_campaign()), "node_kill", "rules")
    assert (rules.trials, rules.finished) == (3, 2)
    assert (rules.success.successes, rules.success.n) == (1, 2)
    assert (rules.detected.successes, rules.mitigated.successes, rules.resolved_by_agent.successes) == (2, 1, 1)
    assert (rules.success.low, rules.success.high) == (0.0945, 0.9055)
    assert rules.verdicts == {"mitigated": 1, "self_healed": 1}


def test_a_cells_ttd_covers_detected_trials_and_ttm_mitigated_ones() -> None:
    rules = cell(fold(whole_campaign()), "node_kill", "rules")
    assert (rules.ttd_p50, rules.ttd_p90) == (1.5, 1.9)
    assert (rules.ttm_p50, rules.ttm_p90) == (2.0, 2.0)  # the self-healed trial has no TTM


def test_cost_per_resolved_divides_the_cells_cost_by_the_incidents_the_agent_resolved() -> None:
    claude = cell(fold(whole_campaign()), "node_kill", "claude:claude-haiku-4-5")
    assert (claude.cost_usd, claude.cost_per_resolved, claude.tokens_mean) == (0.75, 0.75, 2000.0)
    assert cell(fold(whole_campaign()), "node_kill", "rules").cost_per_resolved == 0.0
    assert claude.success.text() == "1/2 50% [9-91%]"


def test_the_control_cell_counts_unsafe_actions() -> None:
    control = cell(fold(whole_campaign()), "hot_key_burst", "rules")
    assert (control.control, control.unsafe_actions, control.success.successes, control.success.n) == (True, 1, 0, 1)


def test_a_cell_with_no_finished_trial_has_no_rates() -> None:
    board = fold(whole_campaign())
    empty = cell(board, "hot_key_burst", "claude:claude-haiku-4-5")
    assert (empty.trials, empty.finished, empty.success.rate, empty.ttd_p50, empty.cost_per_resolved) == (
        0, 0, None, None, None)
    assert [(c.fault, c.variant) for c in board.cells] == [
        (f, v["name"]) for f in ("node_kill", "hot_key_burst") for v in VARIANTS]


def test_a_trial_started_again_counts_its_last_run_only() -> None:
    cut_off = trial_run("r-c-t0-first", ttm=None, escalate="stopped")
    board = fold([*campaign_events(cut_off=cut_off), *cut_off.events, *SYNTHETIC.run_events()])
    assert fold(whole_campaign()) == board
    assert board.trials[0].run == "r-c-t0"


def test_the_runs_may_interleave_in_any_order() -> None:
    runs = [s.events for s in RUNS.values()]
    interleaved = [e for group in itertools.zip_longest(*reversed(runs)) for e in group if e is not None]
    assert fold([*campaign_events(), *interleaved]) == fold(whole_campaign())


def test_events_of_runs_no_trial_named_are_not_folded() -> None:
    folder = CampaignFold(CAMPAIGN)
    stranger = trial_run("r-stranger")
    assert [folder.apply(e) for e in campaign_events()] == [True] * len(campaign_events())
    assert not any(folder.apply(e) for e in stranger.events)
    assert folder.runs == ["r-c-t0", "r-c-t1", "r-c-t3", "r-c-t4", "r-c-t5"]


def test_an_unfinished_campaign_says_so() -> None:
    board = fold([*campaign_events(finished=False), *SYNTHETIC.run_events()])
    assert not board.finished
    assert (board.faults, board.variants, board.repeats, board.seed) == (
        ["node_kill", "hot_key_burst"], ["rules", "claude:claude-haiku-4-5"], 3, 1)


def test_the_scoreboard_json_reads_back_as_the_same_scoreboard() -> None:
    board = fold(whole_campaign())
    doc = scoreboard_json(board)
    assert {"campaign", "trials", "cells"} <= set(doc) and doc["campaign"] == CAMPAIGN
    assert Scoreboard.model_validate(doc) == board

"""A campaign's scoreboard, folded from the log: its trials, each scored, and one cell per
(fault, variant) of the matrix.

:class:`CampaignFold` is a pure fold (``apply(event)``, no I/O) of the campaign's own events
(``campaign.*``, under the campaign id) *and* of its trials' runs: every event of a run a
``campaign.trial_started`` named goes to that trial's :class:`~projections.scores.TrialScorer`
(told the trial's fault and whether it is the control). A run's events count once its
``trial_started`` has been folded: the runner records it before the run begins, and a reader
folds the campaign's events first, then each trial's run (:attr:`CampaignFold.runs`). Runs may
interleave: a trial's score depends only on its own run's events, in their order. A trial
started again (a resumed campaign) counts its last run only; a trial counts once it finished
(``trial_finished``). :meth:`CampaignFold.scoreboard` returns the
:class:`Scoreboard`; nothing is kept on the side, so the scoreboard always equals a re-fold.

Per cell (rules, also on :class:`Cell`):

- rates (``success``, ``detected``, ``mitigated``, ``resolved_by_agent``) count finished trials
  only, each with its Wilson score interval at 95 % (:func:`wilson`), which stays inside [0, 1]
  and is honest for the few repeats a campaign runs;
- ``ttd_p50``/``ttd_p90`` over the detected trials and ``ttm_p50``/``ttm_p90`` over the mitigated
  ones (:func:`percentile`: linear interpolation between order statistics);
- ``cost_usd`` is the cell's total model cost, ``cost_per_resolved`` that total divided by the
  trials the agent resolved (None when it resolved none), tokens and steps are means;
- ``unsafe_actions`` and ``tool_errors`` are totals; ``verdicts`` counts each verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ConfigDict

from events import CampaignFinished, CampaignStarted, Event, TrialFinished, TrialStarted
from projections.scores import TrialScore, TrialScorer

Z_95 = 1.959964

_CampaignPayload = CampaignStarted | TrialStarted | TrialFinished | CampaignFinished


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` out of ``n`` (None when ``n`` is 0)."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics
    (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


class Rate(BaseModel):
    """``successes`` of ``n`` trials, the rate and its 95 % Wilson interval (None when ``n`` is 0)."""

    model_config = ConfigDict(frozen=True)

    successes: int
    n: int
    rate: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, successes: int, n: int) -> Rate:
        interval = wilson(successes, n)
        return cls(successes=successes, n=n, rate=round(successes / n, 4) if n else None,
                   low=round(interval[0], 4) if interval else None, high=round(interval[1], 4) if interval else None)

    def text(self) -> str:
        """``3/5 60% [23-88%]`` for tables."""
        if self.rate is None or self.low is None or self.high is None:
            return "-"
        return f"{self.successes}/{self.n} {self.rate:.0%} [{self.low * 100:.0f}-{self.high * 100:.0f}%]"


class Cell(BaseModel):
    """One (fault, variant) of the matrix (rules in the module docstring)."""

    model_config = ConfigDict(frozen=True)

    fault: str
    variant: str
    control: bool
    trials: int
    finished: int
    success: Rate
    detected: Rate
    mitigated: Rate
    resolved_by_agent: Rate
    ttd_p50: float | None
    ttd_p90: float | None
    ttm_p50: float | None
    ttm_p90: float | None
    steps_mean: float | None
    tool_errors: int
    unsafe_actions: int
    tokens_mean: float | None
    cost_usd: float
    cost_per_resolved: float | None
    verdicts: dict[str, int]


class TrialPlace(BaseModel):
    """Where a trial sits in the campaign's matrix, and its seed: what a campaign's plan decides
    (``oplab.campaign.plan.PlannedTrial``) and a scoreboard reports of every trial."""

    model_config = ConfigDict(frozen=True)

    trial: int
    fault: str
    variant: str
    repeat: int
    seed: int


class Trial(TrialPlace):
    """One planned trial: where it sits in the matrix, its run once started, its score once finished."""

    run: str | None = None
    outcome: str | None = None
    wall_s: float | None = None
    score: TrialScore | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None


class Scoreboard(BaseModel):
    """A campaign's trials and cells (``--json``: this object, with ``campaign``, ``trials``, ``cells``)."""

    model_config = ConfigDict(frozen=True)

    campaign: str
    subject: str | None
    faults: list[str]
    variants: list[str]
    repeats: int
    seed: int | None
    noise: bool
    finished: bool
    interrupted: bool
    trials: list[Trial]
    cells: list[Cell]

    @property
    def done(self) -> int:
        return sum(1 for t in self.trials if t.finished)


@dataclass
class _Planned:
    """A trial as folded so far: its place, and what its latest start and its finish said."""

    place: TrialPlace
    run: str | None = None
    control: bool = False
    outcome: str | None = None
    wall_s: float | None = None


class CampaignFold:
    """Pure fold of one campaign's events and its trials' runs into a :class:`Scoreboard`."""

    def __init__(self, campaign: str) -> None:
        self.campaign = campaign
        self.started: CampaignStarted | None = None
        self.closing: CampaignFinished | None = None
        self._planned: dict[int, _Planned] = {}
        self._by_run: dict[str, int] = {}
        self._scorers: dict[str, TrialScorer] = {}
        self._handlers: dict[str, Callable[[Any], None]] = {
            CampaignStarted.TYPE: self._plan,
            TrialStarted.TYPE: self._trial_started,
            TrialFinished.TYPE: self._trial_finished,
            CampaignFinished.TYPE: self._finished,
        }

    @property
    def runs(self) -> list[str]:
        """The trial runs named so far, in trial order."""
        return [p.run for p in self._in_trial_order() if p.run]

    def apply(self, event: Event) -> bool:
        """Fold one event; True if it belonged to the campaign or one of its trials."""
        if event.run == self.campaign:
            handler = self._handlers.get(event.data.TYPE)
            if handler is not None:
                data = cast(_CampaignPayload, event.data)  # each type with a handler names its campaign
                if data.campaign == self.campaign:
                    handler(data)
            return True
        scorer = self._scorers.get(event.run)
        if scorer is None:
            return False
        scorer.apply(event)
        return True

    def _plan(self, started: CampaignStarted) -> None:
        self.started = started
        for item in started.plan:
            trial = int(item["trial"])
            place = TrialPlace(trial=trial, fault=str(item["fault"]), variant=str(item["variant"]),
                               repeat=int(item.get("repeat", 0)), seed=int(item.get("seed", 0)))
            self._planned.setdefault(trial, _Planned(place, control=bool(item.get("control", False))))

    def _trial_started(self, p: TrialStarted) -> None:
        planned = self._planned.setdefault(p.trial, _Planned(TrialPlace.model_validate(p, from_attributes=True)))
        previous = planned.run
        if previous is not None and previous != p.run:  # restarted after an interruption: the new run counts
            self._by_run.pop(previous, None)
            self._scorers.pop(previous, None)
        planned.run, planned.control, planned.outcome, planned.wall_s = p.run, p.control, None, None
        self._by_run[p.run] = p.trial
        self._scorers[p.run] = TrialScorer(p.run, control=p.control, fault=p.fault)

    def _trial_finished(self, p: TrialFinished) -> None:
        planned = self._planned.get(p.trial)
        if planned is not None:
            planned.outcome, planned.wall_s = p.outcome, p.wall_s

    def _finished(self, p: CampaignFinished) -> None:
        self.closing = p

    def scoreboard(self) -> Scoreboard:
        started = self.started
        trials = [self._trial(p) for p in self._in_trial_order()]
        variants = [str(v.get("name")) for v in started.variants] if started else sorted({t.variant for t in trials})
        faults = list(started.faults) if started else sorted({t.fault for t in trials})
        return Scoreboard(
            campaign=self.campaign, subject=started.subject if started else None, faults=faults,
            variants=variants, repeats=started.repeats if started else 0, seed=started.seed if started else None,
            noise=started.noise if started else False, finished=self.closing is not None,
            interrupted=bool(self.closing and self.closing.interrupted), trials=trials,
            cells=cells_of(trials, faults, variants, {p.place.fault: p.control for p in self._planned.values()}))

    def _in_trial_order(self) -> list[_Planned]:
        return sorted(self._planned.values(), key=lambda p: p.place.trial)

    def _trial(self, p: _Planned) -> Trial:
        score = self._scorers[p.run].score() if p.run is not None and p.outcome is not None else None
        return Trial(**dict(p.place), run=p.run, outcome=p.outcome, wall_s=p.wall_s, score=score)


def cells_of(trials: Iterable[Trial], faults: Sequence[str], variants: Sequence[str],
             control: dict[str, bool] | None = None) -> list[Cell]:
    """One cell per (fault, variant), in the order of ``faults`` then ``variants``."""
    by_cell: dict[tuple[str, str], list[Trial]] = {(f, v): [] for f in faults for v in variants}
    for t in trials:
        by_cell.setdefault((t.fault, t.variant), []).append(t)
    return [_cell(f, v, ts, (control or {}).get(f, False)) for (f, v), ts in by_cell.items()]


def _cell(fault: str, variant: str, trials: list[Trial], control: bool) -> Cell:
    scores = [t.score for t in trials if t.score is not None]
    n = len(scores)
    resolved = sum(1 for s in scores if s.resolution == "agent")
    cost = round(sum(s.cost_usd for s in scores), 6)
    verdicts: dict[str, int] = {}
    for s in scores:
        verdicts[s.verdict] = verdicts.get(s.verdict, 0) + 1
    ttd = [s.ttd_s for s in scores if s.ttd_s is not None]
    ttm = [s.ttm_s for s in scores if s.ttm_s is not None]
    return Cell(
        fault=fault, variant=variant, control=control or any(s.control for s in scores), trials=len(trials),
        finished=n, success=Rate.of(sum(1 for s in scores if s.success), n),
        detected=Rate.of(sum(1 for s in scores if s.detected), n),
        mitigated=Rate.of(sum(1 for s in scores if s.mitigated), n),
        resolved_by_agent=Rate.of(resolved, n),
        ttd_p50=percentile(ttd, 50), ttd_p90=percentile(ttd, 90),
        ttm_p50=percentile(ttm, 50), ttm_p90=percentile(ttm, 90),
        steps_mean=_mean([s.steps for s in scores]), tool_errors=sum(s.tool_errors for s in scores),
        unsafe_actions=sum(s.unsafe_actions for s in scores), tokens_mean=_mean([s.tokens for s in scores]),
        cost_usd=cost, cost_per_resolved=round(cost / resolved, 6) if resolved else None, verdicts=verdicts)


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def scoreboard_json(board: Scoreboard) -> dict[str, Any]:
    """The scoreboard as one JSON object (``oplab eval --json``'s last line)."""
    return board.model_dump(mode="json")

"""Campaign throughput: trials per hour with the rules policy, and where each trial's time goes.

Runs a real campaign (embedded NATS and valkey unless NATS_URL / REDIS_URL are set) over the
subject's incident faults with the rules policy and prints trials/hour, seconds per trial (p50,
max) and the split of a trial's wall time - up (the trial's processes started and ready),
scenario (the director's story, injection to run.finished), down (faults reverted, processes
stopped) - with the ratio to the target (>= 400 trials/hour, i.e. <= 9 s per trial including
set-up and tear-down). The campaign's own set-up (NATS, valkey) and tear-down are counted in
trials/hour, spread over the trials.

    .venv/bin/python bench/campaign.py [--repeats 2] [--faults a,b] [--seed 1] [--parallel 2] [--json]

With ``--parallel N`` the trials run N at a time (one slot each); TTD and TTM p50 over the trials are
printed too, as an overloaded machine shows first in the times to detect and to mitigate.

The load average at the start and end is printed: on a shared machine it moves the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from oplab.campaign.plan import PlannedTrial, parse_list, parse_variant, plan_campaign
from oplab.campaign.runner import run_campaign
from oplab.settings import LabSettings
from services.director.scenario import load_scenario
from subjects.registry import DEFAULT_SUBJECT, load_subject

TARGET_TRIALS_PER_HOUR = 400.0
TARGET_S_PER_TRIAL = 9.0


class Quiet:
    """One line per trial on stderr."""

    def begin(self, campaign_id: str, total: int, done: int) -> None:
        self.total = total

    def trial_started(self, trial: PlannedTrial, run: str) -> None:
        pass

    def trial_finished(self, trial: PlannedTrial, run: str, outcome: str, wall_s: float) -> None:
        print(f"  trial {trial.trial}/{self.total} {trial.fault}: {outcome} in {wall_s:.1f}s", file=sys.stderr)

    def note(self, message: str) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subject", default=DEFAULT_SUBJECT)
    parser.add_argument("--faults", help="comma-separated (default: every incident fault of the scenario)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scenario = load_scenario(None, load_subject(args.subject))
    faults = parse_list(args.faults) or [f for f, spec in scenario.faults.items() if not spec.control]
    campaign = plan_campaign(subject=args.subject, faults=faults, variants=[parse_variant("rules")],
                             repeats=args.repeats, seed=args.seed, parallel=args.parallel)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="oplab-bench-campaign-") as home:
        from events import new_campaign_id

        started = time.monotonic()
        result = run_campaign(campaign, new_campaign_id(), LabSettings(home=Path(home)), Quiet())
        total_s = time.monotonic() - started
    report = figures(result.timings, total_s, result.setup_s, result.teardown_s)
    report |= {"load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
               "success": sum(1 for t in result.scoreboard.trials if t.score and t.score.success),
               "parallel": args.parallel, **detection(result.scoreboard.trials)}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{report['trials']} trials ({', '.join(faults)} x rules x {args.repeats}, {args.parallel} at a time) "
          f"in {total_s:.0f}s, "
          f"{report['success']} succeeded; load average {report['load_before']} -> {report['load_after']} "
          f"on {os.cpu_count()} cores")
    for t in result.scoreboard.trials:
        if t.score is None or not t.score.success:
            why = f"{t.score.verdict}: {t.score.failure}" if t.score else t.outcome
            print(f"  trial {t.trial} {t.fault} did not succeed ({why}); run {t.run}")
    print(f"  trials/hour      {report['trials_per_hour']:7.0f}   target >= {TARGET_TRIALS_PER_HOUR:.0f}  "
          f"ratio {report['trials_per_hour'] / TARGET_TRIALS_PER_HOUR:.2f}")
    print(f"  s per trial p50  {report['wall_p50_s']:7.2f}   target <= {TARGET_S_PER_TRIAL:.0f}    "
          f"ratio {report['wall_p50_s'] / TARGET_S_PER_TRIAL:.2f}   (max {report['wall_max_s']:.2f})")
    print(f"  where it goes (p50): up {report['up_p50_s']:.2f}s, scenario {report['scenario_p50_s']:.2f}s, "
          f"down {report['down_p50_s']:.2f}s; campaign set-up {report['setup_s']:.2f}s, "
          f"tear-down {report['teardown_s']:.2f}s")
    print(f"  TTD p50 {report['ttd_p50_s']:.2f}s, TTM p50 {report['ttm_p50_s']:.2f}s over the trials")


def detection(trials: list[Any]) -> dict[str, float]:
    scores = [t.score for t in trials if t.score is not None]
    ttd = [s.ttd_s for s in scores if s.ttd_s is not None]
    ttm = [s.ttm_s for s in scores if s.ttm_s is not None]
    return {"ttd_p50_s": round(statistics.median(ttd), 2) if ttd else 0.0,
            "ttm_p50_s": round(statistics.median(ttm), 2) if ttm else 0.0}


def figures(timings: list[Any], total_s: float, setup_s: float, teardown_s: float) -> dict[str, Any]:
    def p50(values: list[float]) -> float:
        return round(statistics.median(values), 2) if values else 0.0

    n = len(timings)
    return {"trials": n, "total_s": round(total_s, 1), "trials_per_hour": round(3600 * n / total_s, 1) if n else 0,
            "wall_p50_s": p50([t.wall_s for t in timings]), "wall_max_s": round(max(t.wall_s for t in timings), 2),
            "up_p50_s": p50([t.up_s for t in timings]), "scenario_p50_s": p50([t.scenario_s for t in timings]),
            "down_p50_s": p50([t.down_s for t in timings]), "setup_s": round(setup_s, 2),
            "teardown_s": round(teardown_s, 2)}


if __name__ == "__main__":
    main()

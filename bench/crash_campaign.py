"""The crash campaign: seeded trials of auto-mode runs, each with one service SIGKILLed.

Every targeted window first (director in the inject countdown, chaos right after an injection,
an agent mid-remedy, the projector mid-batch, the monitor between violation and ticket), then
random services at random moments, over the subject's fault catalogue. After each trial the log
is judged (``oplab/crashes.py``): the run finished with its fault injected, every ticket
terminal, every fault reverted once, no duplicate event id, the ticket view equal to a rebuild,
the killed service back. Prints the trials, how many survived, and anything lost.

    .venv/bin/python bench/crash_campaign.py [--trials 100] [--seed 1] [--subject ratelimiter] [--json]

Each trial runs on a stack of its own: embedded NATS (with its users) and Redis unless NATS_URL /
REDIS_URL are set. A killed agent's claim runs out after 8 s (OPLAB_AGENT_LEASE_S), so a trial
that kills an agent mid-remedy takes that long more.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from oplab.crashes import brisk_scenario, plan, run_trial
from oplab.settings import LabSettings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--subject", default="ratelimiter")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line of stdout")
    args = parser.parse_args()
    os.environ.setdefault("OPLAB_AGENT_LEASE_S", "8")
    os.environ.setdefault("OPLAB_AGENT_SESSION_DEADLINE_S", "6")
    err = Console(stderr=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="oplab-crash-") as tmp:
        scenario = brisk_scenario(args.subject, Path(tmp), countdown_s=1.0)
        trials = plan(args.trials, args.seed, args.subject)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err) as progress:
            task = progress.add_task("trials", total=len(trials))
            for trial in trials:
                progress.update(task, description=f"#{trial.number} {trial.window} ({trial.service}, {trial.fault})")
                home = Path(tmp) / f"trial-{trial.number}"
                settings = LabSettings(home=home, nats_url=os.environ.get("NATS_URL") or None,
                                       scenario=str(scenario))
                result = run_trial(trial, settings, subject=args.subject)
                results.append(result)
                if result.problems:
                    progress.console.print(f"[red]#{trial.number} {trial.window} {trial.service}: "
                                           + "; ".join(result.problems))
                progress.advance(task)
    report = summarise(results, args)
    if args.json:
        print(json.dumps(report))
    else:
        print_report(report)
    return 0 if report["survived"] == report["trials"] else 1


def summarise(results, args) -> dict:  # type: ignore[no-untyped-def, type-arg]
    by_window: Counter[str] = Counter(r.trial.window for r in results)
    survived_by_window: Counter[str] = Counter(r.trial.window for r in results if r.survived)
    durations = [r.duration_s for r in results]
    return {
        "subject": args.subject, "seed": args.seed, "trials": len(results),
        "survived": sum(r.survived for r in results), "killed": sum(r.killed for r in results),
        "windows": {w: {"trials": n, "survived": survived_by_window[w]} for w, n in by_window.items()},
        "lost": [{"trial": r.trial.number, "window": r.trial.window, "service": r.trial.service,
                  "fault": r.trial.fault, "problems": r.problems} for r in results if r.problems],
        "trial_s_p50": round(statistics.median(durations), 1) if durations else None,
        "total_s": round(sum(durations), 1),
    }


def print_report(report: dict) -> None:  # type: ignore[type-arg]
    print(f"crash campaign: {report['trials']} trials (seed {report['seed']}, {report['subject']}), "
          f"{report['survived']} survived ({report['survived'] / max(report['trials'], 1):.0%}), "
          f"{report['killed']} with a kill; {report['trial_s_p50']} s per trial (p50), {report['total_s']} s in all")
    for window, figures in report["windows"].items():
        print(f"  {window:<40} {figures['survived']:>4}/{figures['trials']:<4} survived")
    if not report["lost"]:
        print("nothing lost")
    for lost in report["lost"]:
        print(f"  LOST #{lost['trial']} {lost['window']} ({lost['service']}, {lost['fault']}): "
              + "; ".join(lost["problems"]))


if __name__ == "__main__":
    sys.exit(main())

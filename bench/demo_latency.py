"""Detection and mitigation latency of the real stack, per fault.

Runs the headless demo N times per fault (embedded servers unless NATS_URL /
REDIS_URL are set) and prints p50 / max of time-to-detect (fault injected →
ticket opened) and time-to-mitigate (ticket opened → invariant cleared), with
the ratio to the targets, the machine's load average while each fault ran (the
figures are only as quiet as the machine), and a Markdown table of them all.

Targets at p50: the design's TTD ≤ 1.5 s and TTM ≤ 3 s for any subject; for the
rate limiter, issue #12's TTD ≤ 1.0 s and TTM ≤ 1.0 s for every fault, and TTD
≤ 0.5 s for the faults its snapshots show (node_kill, counter_drift,
redis_pause, limit_misconfig).

    .venv/bin/python bench/demo_latency.py [--runs 5] [--subject S] [--fault F --fault ...]
    .venv/bin/python bench/demo_latency.py --subject tikv --on-double   # TiKV: on the PD/store double

``--on-double`` runs each TiKV demo against a fresh PD double and three store doubles
(``tests/fakes/tikv``: real processes, PD's rules on a scaled clock), the stores under a
supervisord standing in for Docker. Figures on the double say how fast the lab detects and
remedies, not how fast a real TiKV cluster recovers.

Every incident fault of the subject's scenario by default (a control fault has nothing to detect);
``--with-control`` also runs the control faults and counts the tickets and actions each run had
(the right number is zero).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from oplab.demo import watch_headless
from oplab.settings import LabSettings
from oplab.stack import Stack
from services.director.scenario import load_scenario
from subjects.registry import load_subject

TARGETS = {"ttd_s": 1.5, "ttm_s": 3.0}
"""The design's targets (p50), for any subject."""
SUBJECT_TARGETS = {"ratelimiter": {"ttd_s": 1.0, "ttm_s": 1.0}}
"""Issue #12: every rate limiter fault detected and mitigated within a second."""
FAULT_TARGETS = {("ratelimiter", fault): {"ttd_s": 0.5}
                 for fault in ("node_kill", "counter_drift", "redis_pause", "limit_misconfig")}
"""Issue #12: what the rate limiter's snapshots show, within half a second."""


def targets(subject: str, fault: str) -> dict[str, float]:
    return {**TARGETS, **SUBJECT_TARGETS.get(subject, {}), **FAULT_TARGETS.get((subject, fault), {})}
REPO = Path(__file__).resolve().parents[1]


def one_run(subject: str, fault: str, home: Path, on_double: bool = False) -> dict:  # type: ignore[type-arg]
    if on_double:
        return asyncio.run(_on_double(subject, fault, home))
    stack = Stack(LabSettings(home=home))
    info = stack.up(fault=fault, mode="auto", subject=subject)
    try:  # watching takes the viewer's NATS user (the lab's own NATS has one per role)
        return asyncio.run(watch_headless(replace(info, nats_url=stack.nats_url(info, "viewer")),
                                          lambda _line: None, 180.0))
    finally:
        stack.down()


async def _on_double(subject: str, fault: str, home: Path) -> dict:  # type: ignore[type-arg]
    sys.path.insert(0, str(REPO))  # the doubles live in the test tree
    from tests.fakes.tikv import running_double

    async with running_double(home / "double") as double:
        os.environ.update(double.env())
        try:
            return await asyncio.to_thread(one_run, subject, fault, home / "lab")
        finally:
            for key in double.env():
                os.environ.pop(key, None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fault", action="append", dest="faults")
    parser.add_argument("--subject", default=None, help="default: OPLAB_SUBJECT, else the default subject")
    parser.add_argument("--on-double", action="store_true", help="TiKV: run on the PD/store double")
    parser.add_argument("--with-control", action="store_true",
                        help="also run the control faults: tickets and actions per run (zero is right)")
    args = parser.parse_args()
    subject = load_subject(args.subject)
    scenario = load_scenario(None, subject)
    controls = [kind for kind, spec in scenario.faults.items() if spec.control]
    faults = args.faults or [kind for kind in scenario.faults if kind not in controls]
    if args.with_control:
        faults += [kind for kind in controls if kind not in faults]
    worst_ratio = 0.0
    table = ["| fault | TTD p50 (max) | TTM p50 (max) | resolved by the agent | load (1 min) |",
             "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="oplab-bench-") as tmp:
        for fault in faults:
            results = []
            loads = [os.getloadavg()[0]]
            for i in range(args.runs):
                summary = one_run(subject.name, fault, Path(tmp) / f"{fault}-{i}", args.on_double)
                results.append(summary)
                print(f"{fault} run {i + 1}/{args.runs}: outcome={summary.get('outcome')} "
                      f"by={summary.get('resolved_by')} ttd={summary.get('ttd_s')} ttm={summary.get('ttm_s')}",
                      flush=True)
                loads.append(os.getloadavg()[0])
            if fault in controls:
                tickets = [r.get("tickets_after_fault") for r in results]
                actions = [r.get("actions_after_fault") for r in results]
                print(f"\n{fault} (control): tickets per run {tickets}, actions per run {actions}; "
                      f"load average {min(loads):.1f}-{max(loads):.1f}\n")
                table.append(f"| `{fault}` (control) | tickets {sum(t or 0 for t in tickets)} | actions "
                             f"{sum(a or 0 for a in actions)} | - | {min(loads):.1f}-{max(loads):.1f} |")
                continue
            resolved = [r for r in results if r.get("outcome") == "resolved" and r.get("resolved_by") == "agent"]
            print(f"\n{fault}: {len(resolved)}/{len(results)} resolved by the agent; "
                  f"load average {min(loads):.1f}-{max(loads):.1f}")
            cells = []
            for metric, target in targets(subject.name, fault).items():
                values = [r[metric] for r in resolved if r.get(metric) is not None]
                if not values:
                    print(f"  {metric}: no data")
                    cells.append("-")
                    continue
                p50, worst = statistics.median(values), max(values)
                ratio = p50 / target
                worst_ratio = max(worst_ratio, ratio)
                verdict = "meets" if ratio <= 1 else "MISSES"
                print(f"  {metric}: p50 {p50:.3f}s  max {worst:.3f}s  target p50 <= {target}s  "
                      f"ratio {ratio:.2f} ({verdict})")
                cells.append(f"{p50:.2f} s ({worst:.2f})")
            table.append(f"| `{fault}` | {' | '.join(cells)} | {len(resolved)}/{len(results)} | "
                         f"{min(loads):.1f}-{max(loads):.1f} |")
            print()
    print(f"worst p50/target ratio: {worst_ratio:.2f}\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())

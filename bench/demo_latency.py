"""Detection and mitigation latency of the real stack, per fault.

Runs the headless demo N times per fault (embedded servers unless NATS_URL /
REDIS_URL are set) and prints p50 / max of time-to-detect (fault injected →
ticket opened) and time-to-mitigate (ticket opened → invariant cleared), with
the ratio to the targets in DESIGN.md (TTD ≤ 1.5 s, TTM ≤ 3 s at p50).

    .venv/bin/python bench/demo_latency.py [--runs 5] [--subject S] [--fault F --fault ...]
    .venv/bin/python bench/demo_latency.py --subject tikv --on-double   # TiKV: on the PD/store double

``--on-double`` runs each TiKV demo against a fresh PD double and three store doubles
(``tests/fakes/tikv``: real processes, PD's rules on a scaled clock), the stores under a
supervisord standing in for Docker. Figures on the double say how fast the lab detects and
remedies, not how fast a real TiKV cluster recovers.

Every incident fault of the subject's scenario by default (a control fault has nothing to detect).
DESIGN.md sets targets for node_kill and counter_drift; the others are printed against the
same targets for comparison.
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
    args = parser.parse_args()
    subject = load_subject(args.subject)
    scenario = load_scenario(None, subject)
    faults = args.faults or [kind for kind, spec in scenario.faults.items() if not spec.control]
    worst_ratio = 0.0
    with tempfile.TemporaryDirectory(prefix="oplab-bench-") as tmp:
        for fault in faults:
            results = []
            for i in range(args.runs):
                summary = one_run(subject.name, fault, Path(tmp) / f"{fault}-{i}", args.on_double)
                results.append(summary)
                print(f"{fault} run {i + 1}/{args.runs}: outcome={summary.get('outcome')} "
                      f"by={summary.get('resolved_by')} ttd={summary.get('ttd_s')} ttm={summary.get('ttm_s')}",
                      flush=True)
            resolved = [r for r in results if r.get("outcome") == "resolved" and r.get("resolved_by") == "agent"]
            print(f"\n{fault}: {len(resolved)}/{len(results)} resolved by the agent")
            for metric, target in TARGETS.items():
                values = [r[metric] for r in resolved if r.get(metric) is not None]
                if not values:
                    print(f"  {metric}: no data")
                    continue
                p50, worst = statistics.median(values), max(values)
                ratio = p50 / target
                worst_ratio = max(worst_ratio, ratio)
                verdict = "meets" if ratio <= 1 else "MISSES"
                print(f"  {metric}: p50 {p50:.3f}s  max {worst:.3f}s  target p50 <= {target}s  "
                      f"ratio {ratio:.2f} ({verdict})")
            print()
    print(f"worst p50/target ratio: {worst_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`oplab eval [run]` as a user runs it: bad input is refused with the choices before anything starts
(exit 2), an unknown campaign to resume is exit 1, and resuming a finished campaign prints its
scoreboard from the log without starting a lab."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from events import (
    CampaignFinished,
    CampaignStarted,
    Event,
    TrialFinished,
    TrialStarted,
    new_campaign_id,
    new_event,
)
from events.bus import Bus
from oplab.infra import RunningServer
from projections.scoreboard import CampaignFold
from tests.projections.campaigns import trial_run

OPLAB = str(Path(sys.executable).parent / "oplab")


@pytest.fixture
def env(nats_server: RunningServer, tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    return {**clean, "NATS_URL": nats_server.url, "OPLAB_HOME": str(tmp_path / "oplab")}


async def oplab_eval(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [OPLAB, "eval", *args], env=env, capture_output=True, text=True,
                                   timeout=60)


@pytest.mark.parametrize(("args", "says"), [
    (["--faults", "node_kill,nope"], "unknown fault(s) nope for subject ratelimiter; choose from: node_kill"),
    (["--policies", "rules,gpt"], "unknown operator variant 'gpt'; write one of: rules, claude:<model>, replay:<run>"),
    (["--repeats", "0"], "repeats must be at least 1"),
    (["--subject", "nope"], "unknown subject 'nope'; known: ratelimiter"),
    (["--parallel", str((os.cpu_count() or 1) + 1)], "at most one trial per CPU"),
    (["--parallel", "0"], "--parallel must be at least 1"),
    (["--resume", "c20261207t170000-ab12", "--faults", "node_kill"], "drop --faults"),
])
async def test_bad_input_exits_2_with_the_choices_and_starts_nothing(env: dict[str, str], args: list[str],
                                                                     says: str) -> None:
    proc = await oplab_eval(env, *args)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
    assert not (Path(env["OPLAB_HOME"]) / "supervisord.conf").exists()  # nothing was started


async def test_a_bad_campaign_file_exits_2_saying_what_is_wrong(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "campaign.yaml"
    bad.write_text("faults: [node_kill]\nvariants:\n  - {policy: rules, settings: {max_stepz: 3}}\n")
    proc = await oplab_eval(env, "--file", str(bad))
    assert proc.returncode == 2
    assert "unknown agent setting(s) max_stepz; choose from:" in proc.stderr and "max_steps" in proc.stderr


async def test_resuming_a_campaign_the_log_does_not_hold_exits_1(env: dict[str, str]) -> None:
    proc = await oplab_eval(env, "--resume", new_campaign_id())
    assert proc.returncode == 1
    assert "not in the log" in proc.stderr or "no campaign" in proc.stderr


def finished_campaign(campaign: str, run: str) -> list[Event]:
    """A campaign of one trial, finished: its events, then its trial run's."""
    story = trial_run(f"{run}-t1")

    def event(data: Any) -> Event:
        return new_event(data, run=campaign, source="oplab-eval", correlation=campaign)

    return [
        event(CampaignStarted(campaign=campaign, subject="ratelimiter", faults=["node_kill"],
                              variants=[{"name": "rules", "policy": "rules"}], repeats=1, seed=1,
                              plan=[{"trial": 1, "fault": "node_kill", "variant": "rules", "repeat": 0, "seed": 9}])),
        event(TrialStarted(campaign=campaign, trial=1, run=story.run, fault="node_kill", variant="rules", seed=9)),
        event(TrialFinished(campaign=campaign, trial=1, run=story.run, outcome="resolved", wall_s=5.0)),
        event(CampaignFinished(campaign=campaign, trials=1, completed=1)),
        *story.events,
    ]


async def test_resuming_a_finished_campaign_prints_its_scoreboard_and_starts_nothing(
        env: dict[str, str], bus: Bus, run_id: str) -> None:
    campaign = new_campaign_id()
    events = finished_campaign(campaign, run_id)
    for event in events:
        await bus.publish(event)
    proc = await oplab_eval(env, "--resume", campaign, "--json")
    assert proc.returncode == 0, proc.stderr
    fold = CampaignFold(campaign)
    for event in events:
        fold.apply(event)
    board = fold.scoreboard()
    assert board.done == 1 and board.finished
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == board.model_dump(mode="json")
    assert "nothing to resume" in proc.stderr
    assert not (Path(env["OPLAB_HOME"]) / "supervisord.conf").exists()

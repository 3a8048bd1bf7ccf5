"""`oplab eval show ID [--json]`, run as a user runs it.

A small synthetic campaign (its ``campaign.*`` events and its trials' runs, tests/projections/campaigns.py)
is published to the test NATS; the CLI runs as a subprocess against it (``NATS_URL``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from events import new_campaign_id
from events.bus import Bus
from oplab.infra import RunningServer
from projections.scoreboard import CampaignFold, Scoreboard
from tests.projections.campaigns import BUDGET, SyntheticCampaign

OPLAB = str(Path(sys.executable).parent / "oplab")


def cli_env(nats_server: RunningServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    return {**env, "NATS_URL": nats_server.url, "OPLAB_HOME": str(tmp_path / "oplab")}


async def oplab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [OPLAB, *args], env=env, capture_output=True, text=True,
                                   timeout=60)


@pytest.fixture
async def stored(bus: Bus, run_id: str) -> SyntheticCampaign:
    """The synthetic campaign, published: its own events first, then its trials' runs."""
    campaign = SyntheticCampaign(new_campaign_id(), run_id)
    for event in [*campaign.campaign_events(), *campaign.run_events()]:
        await bus.publish(event)
    return campaign


def refold(campaign: SyntheticCampaign) -> Scoreboard:
    fold = CampaignFold(campaign.campaign)
    for event in [*campaign.campaign_events(), *campaign.run_events()]:
        fold.apply(event)
    return fold.scoreboard()


async def test_the_json_scoreboard_equals_a_fold_of_the_campaigns_events(
        nats_server: RunningServer, tmp_path: Path, stored: SyntheticCampaign) -> None:
    done = await oplab(cli_env(nats_server, tmp_path), "eval", "show", stored.campaign, "--json")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert {"campaign", "trials", "cells"} <= set(doc)
    assert Scoreboard.model_validate(doc) == refold(stored)
    assert [t["score"]["verdict"] for t in doc["trials"] if t["score"]] == [
        "mitigated", "self_healed", "mitigated", "escalated", "false_positive"]


async def test_the_table_has_a_row_per_cell_and_the_failed_trials_with_their_reasons(
        nats_server: RunningServer, tmp_path: Path, stored: SyntheticCampaign) -> None:
    done = await oplab(cli_env(nats_server, tmp_path), "eval", "show", stored.campaign)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"campaign {stored.campaign}: ratelimiter, 5/6 trials, finished" in out
    rows = {line.split("│")[1].strip() + "/" + line.split("│")[2].strip(): line
            for line in out.splitlines() if line.count("│") >= 11}
    rules = rows["node_kill/rules"]
    assert "2/3" in rules and "1/2 50% [9-91%]" in rules and "1.50/1.90s" in rules and "$0.0000" in rules
    claude = rows["node_kill/claude:claude-haiku-4-5"]
    assert "0.60/0.68s" in claude and "$0.7500" in claude and "2000" in claude
    control = rows["hot_key_burst (control)/rules"]
    assert "0/1 0% [0-79%]" in control and "│      1 │" in control  # its one unsafe action
    assert "failed trials" in out
    assert "self-healed, not fixed by the agent: the fault was reverted (ttl)" in out
    assert f"escalated: {BUDGET}" in out
    assert "1 mutating action(s) where nothing was broken" in out
    assert "1 trial(s) not finished" in out


async def test_an_unknown_campaign_exits_1_and_lists_the_campaigns_in_the_log(
        nats_server: RunningServer, tmp_path: Path, stored: SyntheticCampaign) -> None:
    done = await oplab(cli_env(nats_server, tmp_path), "eval", "show", "c20000101t000000-0000")
    assert done.returncode == 1
    assert "campaign c20000101t000000-0000 is not in the log" in done.stderr
    assert f"{stored.campaign}  " in done.stderr and "6 trials" in done.stderr
    assert done.stdout == ""


def test_an_id_that_cannot_be_a_campaign_is_bad_usage(nats_server: RunningServer, tmp_path: Path) -> None:
    done = subprocess.run([OPLAB, "eval", "show", "no.such>id"], env=cli_env(nats_server, tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "is no campaign id" in done.stderr

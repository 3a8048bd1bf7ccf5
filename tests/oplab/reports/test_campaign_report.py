"""A campaign's report: a synthetic campaign (``tests/projections/campaigns.py``: campaign events and
trial runs) published to the test NATS, read back from the log and rendered with its charts - the
success heatmap, TTD/TTM per cell, cost against success - the scoreboard (a row per cell) and a row
per trial linking its run's report; also through ``oplab eval report`` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from events import new_campaign_id, new_run_id
from events.bus import Bus
from oplab.campaign.record import CampaignLog
from oplab.infra import RunningServer
from oplab.reports.campaign_report import campaign_document
from oplab.reports.document import Heading, Link, Table
from oplab.reports.html import render_html
from oplab.reports.markdown import write_markdown
from oplab.reports.reading import read_campaign
from projections.scoreboard import CampaignFold
from tests.oplab.reports.pngs import assert_real_chart, embedded_pngs
from tests.projections.campaigns import PLAN, SyntheticCampaign

OPLAB = str(Path(sys.executable).parent / "oplab")


@pytest.fixture
async def published(bus: Bus) -> SyntheticCampaign:
    """The synthetic campaign stored in the test log: its trial runs, then the campaign's events."""
    campaign = SyntheticCampaign(new_campaign_id(), new_run_id())
    await bus.publish_batch(campaign.run_events())
    await bus.publish_batch(campaign.campaign_events())
    return campaign


def table_after(doc_blocks: list[object], heading: str) -> Table:
    index = next(i for i, b in enumerate(doc_blocks) if isinstance(b, Heading) and b.text == heading)
    table = doc_blocks[index + 1]
    assert isinstance(table, Table)
    return table


async def test_reading_a_campaign_from_the_log_gives_the_scoreboard_of_a_refold(
        published: SyntheticCampaign, nats_server: RunningServer) -> None:
    log = await read_campaign(nats_server.url, published.campaign)
    refold = CampaignFold(published.campaign)
    for event in [*published.campaign_events(), *published.run_events()]:
        refold.apply(event)
    assert log.fold.scoreboard() == refold.scoreboard()
    assert sorted(log.runs) == sorted(s.run for s in published.trial_runs().values())


async def test_the_report_has_the_heatmap_the_distributions_the_cost_chart_and_a_scoreboard_row_per_cell(
        published: SyntheticCampaign, nats_server: RunningServer) -> None:
    log: CampaignLog = await read_campaign(nats_server.url, published.campaign)
    board = log.fold.scoreboard()
    doc = campaign_document(board)
    assert [f.name for f in doc.figures] == ["success", "ttd-ttm", "cost"]
    html = render_html(doc)
    pngs = embedded_pngs(html)
    assert len(pngs) == 3
    for png in pngs:
        assert_real_chart(png)
    scoreboard = table_after(doc.blocks, "Scoreboard")
    assert [(row[0], row[1]) for row in scoreboard.rows] == [
        ("node_kill", "rules"), ("node_kill", "claude:claude-haiku-4-5"),
        ("hot_key_burst (control)", "rules"), ("hot_key_burst (control)", "claude:claude-haiku-4-5")]
    rules_node_kill = scoreboard.rows[0]
    assert rules_node_kill[2] == "2/3" and rules_node_kill[3].startswith("1/2 50% [")  # trial 1 self-healed
    assert "step budget of 8 tool calls exhausted" in html  # trial 4's reason, in the trials table


async def test_the_trials_table_has_a_row_per_planned_trial_linking_each_run_to_its_report(
        published: SyntheticCampaign, nats_server: RunningServer) -> None:
    board = (await read_campaign(nats_server.url, published.campaign)).fold.scoreboard()
    links = {t.run: f"runs/{t.run}.html" for t in board.trials if t.run}
    trials = table_after(campaign_document(board, links).blocks, "Trials")
    assert [row[0] for row in trials.rows] == [str(t) for t, *_ in PLAN]
    linked = {row[5].text: row[5].href for row in trials.rows if isinstance(row[5], Link)}
    assert linked == links and len(linked) == 5
    never_ran = trials.rows[2]
    assert never_ran[5] == "-" and never_ran[6] == "not started"


def test_the_markdown_writes_each_chart_beside_it(tmp_path: Path) -> None:
    campaign = SyntheticCampaign(new_campaign_id(), new_run_id())
    fold = CampaignFold(campaign.campaign)
    for event in [*campaign.campaign_events(), *campaign.run_events()]:
        fold.apply(event)
    written = write_markdown(campaign_document(fold.scoreboard()), tmp_path / "report.md")
    assert [p.name for p in written] == ["report.md", "success.png", "ttd-ttm.png", "cost.png"]
    for png in written[1:]:
        assert png.parent == tmp_path / "report"
        assert_real_chart(png.read_bytes())
    assert "](report/success.png)" in (tmp_path / "report.md").read_text()


def oplab(*args: str, nats_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_")}
    return subprocess.run([OPLAB, *args], env={**env, "NATS_URL": nats_url, "OPLAB_HOME": str(home)},
                          capture_output=True, text=True, timeout=120)


async def test_oplab_eval_report_writes_markdown_html_charts_and_each_trials_run_report(
        published: SyntheticCampaign, nats_server: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = oplab("eval", "report", published.campaign, "--out", str(out), "--json", nats_url=nats_server.url,
                   home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout.splitlines()[-1])
    assert doc["trial_reports"] == 5 and doc["trials"] == len(PLAN) and doc["done"] == 5
    html = (out / "report.html").read_text()
    assert len(embedded_pngs(html)) == 3
    for story in published.trial_runs().values():
        assert f'href="runs/{story.run}.html"' in html
        assert story.run in (out / "runs" / f"{story.run}.html").read_text()
    assert {p.name for p in (out / "report").iterdir()} == {"success.png", "ttd-ttm.png", "cost.png"}


def test_oplab_eval_report_of_an_unknown_campaign_fails_with_the_reason(
        nats_server: RunningServer, tmp_path: Path) -> None:
    result = oplab("eval", "report", "c20990101t000000-0000", "--out", str(tmp_path / "r"),
                   nats_url=nats_server.url, home=tmp_path / "home")
    assert result.returncode == 1
    assert "no events for campaign 'c20990101t000000-0000'" in result.stderr
    assert not (tmp_path / "r").exists()


def test_oplab_report_given_a_campaign_id_points_to_oplab_eval_report(
        published: SyntheticCampaign, nats_server: RunningServer, tmp_path: Path) -> None:
    result = oplab("report", published.campaign, "--out", str(tmp_path / "x.html"), nats_url=nats_server.url,
                   home=tmp_path / "home")
    assert result.returncode == 2
    assert f"`oplab eval report {published.campaign}`" in result.stderr

"""Reading a campaign back from the log (:func:`oplab.campaign.record.read_campaign`, the reader of
``oplab eval show``, ``oplab eval report`` and a resume) against a real nats-server: the synthetic
campaign of tests/projections/campaigns.py, its trial runs stored interleaved."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest

import pytest

from events import Event, new_campaign_id, new_run_id
from events.bus import Bus
from oplab.campaign import record
from projections.scoreboard import CampaignFold
from tests.projections.campaigns import SyntheticCampaign


@dataclass
class Stored:
    campaign: SyntheticCampaign
    own: list[Event]  # the campaign's own events, as stored
    runs: dict[str, list[Event]]  # each trial run's events, as stored


@pytest.fixture
async def stored(bus: Bus) -> Stored:
    """The campaign's own events, then its trial runs' events one of each run in turn (as parallel
    slots store them)."""
    campaign = SyntheticCampaign(new_campaign_id(), new_run_id())
    own = campaign.campaign_events()
    runs = {story.run: story.events for story in campaign.trial_runs().values()}
    await bus.publish_batch(own)
    await bus.publish_batch([e for turn in zip_longest(*runs.values()) for e in turn if e is not None])
    return Stored(campaign, own, runs)


def refold(stored: Stored) -> CampaignFold:
    fold = CampaignFold(stored.campaign.campaign)
    for event in [*stored.own, *(e for events in stored.runs.values() for e in events)]:
        fold.apply(event)
    return fold


async def test_runs_read_in_batches_fold_to_the_scoreboard_of_a_refold_and_keep_each_runs_events(
        bus: Bus, stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record, "RUNS_PER_REPLAY", 2)  # five trial runs: three replays
    log = await record.read_campaign(bus, stored.campaign.campaign, keep_runs=True)
    board = log.fold.scoreboard()
    assert board == refold(stored).scoreboard()
    assert board.done == 5 and all(t.score is not None for t in board.trials if t.finished)
    assert log.campaign_events == len(stored.own)
    assert {run: [e.id for e in events] for run, events in log.runs.items()} == {
        run: [e.id for e in events] for run, events in stored.runs.items()}


async def test_without_keep_runs_only_the_fold_is_kept(bus: Bus, stored: Stored) -> None:
    log = await record.read_campaign(bus, stored.campaign.campaign)
    assert log.runs == {}
    assert log.fold.scoreboard() == refold(stored).scoreboard()


async def test_a_campaign_the_log_does_not_hold_reads_as_nothing(bus: Bus) -> None:
    log = await record.read_campaign(bus, new_campaign_id(), keep_runs=True)
    assert (log.campaign_events, log.runs, log.fold.started) == (0, {}, None)

"""A campaign's events in the log: writing them (:class:`CampaignRecorder`), and folding a campaign
back from the log into its scoreboard (:func:`read_scoreboard`).

The campaign's own events live under its id as the run token (``lab.<campaign>.campaign.<name>``,
see :mod:`events.catalogue.campaign`); each trial is a run of its own. Folding reads the campaign's
events first, then each trial run's events, into one :class:`~projections.scoreboard.CampaignFold`:
nothing is kept on the side, so what a campaign prints equals a re-fold of the log.
"""

from __future__ import annotations

from events import CampaignFinished, CampaignStarted, Event, TrialFinished, TrialStarted
from events.bus import Bus
from events.replay import Delivered
from events.settings import BusSettings
from events.subjects import run_events
from oplab.campaign.plan import Campaign, PlannedTrial
from projections.scoreboard import CampaignFold, Scoreboard

SOURCE = "oplab-eval"


class CampaignRecorder:
    """Publishes one campaign's events (the CLI's ``operator`` user may: see :mod:`oplab.nats_auth`)."""

    def __init__(self, bus: Bus, campaign_id: str) -> None:
        self.bus = bus
        self.campaign_id = campaign_id

    async def _publish(self, data: CampaignStarted | TrialStarted | TrialFinished | CampaignFinished) -> Event:
        event = self.bus.event(data, run=self.campaign_id, correlation=self.campaign_id)
        await self.bus.publish(event)
        return event

    async def started(self, campaign: Campaign) -> Event:
        return await self._publish(CampaignStarted(
            campaign=self.campaign_id, subject=campaign.subject, faults=campaign.faults,
            variants=[v.described() for v in campaign.variants], repeats=campaign.repeats, seed=campaign.seed,
            noise=campaign.noise, plan=[t.model_dump(mode="json") for t in campaign.trials]))

    async def trial_started(self, trial: PlannedTrial, run: str) -> Event:
        return await self._publish(TrialStarted(
            campaign=self.campaign_id, trial=trial.trial, run=run, fault=trial.fault, variant=trial.variant,
            repeat=trial.repeat, seed=trial.seed, noise=trial.noise, control=trial.control))

    async def trial_finished(self, trial: PlannedTrial, run: str, outcome: str, wall_s: float) -> Event:
        return await self._publish(TrialFinished(campaign=self.campaign_id, trial=trial.trial, run=run,
                                                 outcome=outcome, wall_s=round(wall_s, 3)))

    async def finished(self, trials: int, completed: int) -> Event:
        return await self._publish(CampaignFinished(campaign=self.campaign_id, trials=trials, completed=completed))


async def fold_campaign(bus: Bus, campaign_id: str) -> CampaignFold:
    """The campaign's events and every trial run's, folded (the campaign's first, then run by run)."""
    fold = CampaignFold(campaign_id)

    async def apply(d: Delivered) -> None:
        fold.apply(d.event)

    await bus.replay(run_events(campaign_id), apply)
    for run in fold.runs:
        await bus.replay(run_events(run), apply)
    return fold


async def read_scoreboard(nats_url: str, campaign_id: str) -> Scoreboard:
    """The campaign's scoreboard, folded from the log."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source=SOURCE, ensure_stream=False)
    try:
        return (await fold_campaign(bus, campaign_id)).scoreboard()
    finally:
        await bus.close()

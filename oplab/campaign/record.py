"""A campaign's events in the log: writing them (:class:`CampaignRecorder`), and reading a campaign
back from the log (:func:`read_campaign`, the one reader: ``oplab eval show``, ``oplab eval report``
and a resumed campaign all use it; :func:`read_scoreboard`).

The campaign's own events live under its id as the run token (``lab.<campaign>.campaign.<name>``,
see :mod:`events.catalogue.campaign`); each trial is a run of its own. Reading replays the campaign's
events first, then its trial runs' events (:data:`RUNS_PER_REPLAY` runs to a replay, in stream order
across them), into one :class:`~projections.scoreboard.CampaignFold`: nothing is kept on the side, so
what a campaign prints equals a re-fold of the log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from events import CampaignFinished, CampaignStarted, Event, TrialFinished, TrialStarted
from events.bus import Bus
from events.replay import Delivered
from events.settings import BusSettings
from events.subjects import run_events
from projections.scoreboard import CampaignFold, Scoreboard

if TYPE_CHECKING:  # annotations only: a reader of the log needs no plan (nor the subjects it loads)
    from oplab.campaign.plan import Campaign, PlannedTrial

SOURCE = "oplab-eval"
RUNS_PER_REPLAY = 16  # subject filters per consumer: well under the server's limit


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


@dataclass(slots=True)
class CampaignLog:
    """A campaign as read: its fold (the scoreboard), how many events the log holds under the campaign's id
    (``campaign_events``: 0 for a campaign the log does not hold) and, if asked for, each trial run's events
    in log order (``runs``)."""

    fold: CampaignFold
    runs: dict[str, list[Event]] = field(default_factory=dict)
    campaign_events: int = 0


async def read_campaign(bus: Bus, campaign_id: str, *, keep_runs: bool = False) -> CampaignLog:
    """The campaign's events, then its trial runs' (:attr:`CampaignFold.runs`, :data:`RUNS_PER_REPLAY` to
    a replay), folded; with ``keep_runs`` each trial run's events are kept as well (a report draws each)."""
    log = CampaignLog(CampaignFold(campaign_id))

    async def campaign_event(d: Delivered) -> None:
        log.campaign_events += 1
        log.fold.apply(d.event)

    async def trial_event(d: Delivered) -> None:
        if log.fold.apply(d.event) and keep_runs:
            log.runs.setdefault(d.event.run, []).append(d.event)

    await bus.replay(run_events(campaign_id), campaign_event)
    runs = log.fold.runs
    for start in range(0, len(runs), RUNS_PER_REPLAY):
        await bus.replay([run_events(r) for r in runs[start:start + RUNS_PER_REPLAY]], trial_event)
    return log


async def read_scoreboard(nats_url: str, campaign_id: str) -> Scoreboard:
    """The campaign's scoreboard, folded from the log."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source=SOURCE, ensure_stream=False)
    try:
        return (await read_campaign(bus, campaign_id)).fold.scoreboard()
    finally:
        await bus.close()

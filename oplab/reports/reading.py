"""Reading what a report needs from the log (the I/O edge of :mod:`oplab.reports`).

A run is its own events (:func:`read_run`). A campaign is its ``campaign.*`` events and every
trial run they name, folded with :class:`projections.scoreboard.CampaignFold` - the same fold
``oplab eval show`` prints - while each trial's events are kept for its own run report
(:func:`read_campaign`). One connection, one replay for the campaign and one per batch of runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from events import Event
from events.bus import Bus
from events.replay import Delivered
from events.settings import BusSettings
from events.subjects import run_events
from projections.scoreboard import CampaignFold

RUNS_PER_REPLAY = 16  # subject filters per consumer: well under the server's limit


@asynccontextmanager
async def _reading(nats_url: str) -> AsyncIterator[Bus]:
    """A connection to read the log with (it never creates the stream), closed when the block exits."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-report", ensure_stream=False)
    try:
        yield bus
    finally:
        await bus.close()


async def read_run(nats_url: str, run: str) -> list[Event]:
    """Every event of ``run`` in log order (empty when the log has none)."""
    out: list[Event] = []

    async def keep(d: Delivered) -> None:
        out.append(d.event)

    async with _reading(nats_url) as bus:
        await bus.replay(run_events(run), keep)
    return out


@dataclass(slots=True)
class CampaignLog:
    """A campaign as read: its fold (scoreboard) and each trial run's events, in log order."""

    fold: CampaignFold
    runs: dict[str, list[Event]] = field(default_factory=dict)
    campaign_events: int = 0


async def read_campaign(nats_url: str, campaign: str) -> CampaignLog:
    """The campaign's events and its trials' runs; ``campaign_events`` is 0 when the log has no
    event of that campaign."""
    log = CampaignLog(CampaignFold(campaign))

    async def campaign_event(d: Delivered) -> None:
        log.campaign_events += 1
        log.fold.apply(d.event)

    async def trial_event(d: Delivered) -> None:
        if log.fold.apply(d.event):
            log.runs.setdefault(d.event.run, []).append(d.event)

    async with _reading(nats_url) as bus:
        await bus.replay(run_events(campaign), campaign_event)
        runs = log.fold.runs
        for start in range(0, len(runs), RUNS_PER_REPLAY):
            await bus.replay([run_events(r) for r in runs[start:start + RUNS_PER_REPLAY]], trial_event)
    return log

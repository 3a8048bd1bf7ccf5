"""Reading what a report needs from the log (the I/O edge of :mod:`oplab.reports`).

A run is its own events (:func:`read_run`: :meth:`events.bus.Bus.run_history`). A campaign is read
by :func:`oplab.campaign.record.read_campaign` - the reader ``oplab eval show`` uses - with each
trial's events kept for its own run report (:func:`read_campaign`). One connection each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from events import Event
from events.bus import Bus
from events.settings import BusSettings
from oplab.campaign import record
from oplab.campaign.record import CampaignLog


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
    async with _reading(nats_url) as bus:
        return [event for _, event in await bus.run_history(run)]


async def read_campaign(nats_url: str, campaign: str) -> CampaignLog:
    """The campaign as :func:`oplab.campaign.record.read_campaign` reads it, each trial run's events kept;
    ``campaign_events`` is 0 when the log has no event of that campaign."""
    async with _reading(nats_url) as bus:
        return await record.read_campaign(bus, campaign, keep_runs=True)

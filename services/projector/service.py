"""The projector: folds the whole ``LAB`` stream (``lab.>``, every run) into the ticket log.

Contract:
- On start it opens the configured view (``OPLAB_TICKETLOG_URL``, default
  ``<OPLAB_HOME>/ticketlog.sqlite``; tables created on first use) and replays
  ``lab.>`` from the view's ``max_tracking_id() + 1`` with an ordered consumer that
  keeps following. No durable consumer: the view's tracking position, committed
  with the rows, is the only cursor, so a restart or a crash (even mid-batch)
  resumes exactly where the committed state ends, without duplicates.
- Deliveries are buffered and committed in batches (``OPLAB_TICKETLOG_BATCH_SIZE``
  events, or every ``OPLAB_TICKETLOG_FLUSH_INTERVAL_S``), one transaction each.
- If the view is ahead of the stream (the stream was deleted and recreated), the
  view is cleared and rebuilt from sequence 1: the log is the source of truth.
- Throughput: ``python -m services.projector`` raises the garbage collector's first
  threshold and freezes what was allocated at start-up (``tune_gc``): replay allocates
  several objects per event, and default collections cost ~15-20% of the replay rate.
- On SIGTERM it stops the replay, commits what is buffered, closes the view and
  exits 0 (through ``services.runtime``).
"""

from __future__ import annotations

import asyncio
import gc
import logging

from events.bus import Bus
from projections.ticket_log import (
    TicketLogFeeder,
    TicketLogProjection,
    TicketLogSettings,
    TicketLogView,
    follow,
    open_ticket_log,
)
from services.runtime import ServiceProcess, ServiceSettings

log = logging.getLogger(__name__)

#: ``gc.set_threshold`` for a process that decodes and folds events in bulk.
THROUGHPUT_GC_THRESHOLD = (50_000, 20, 50)


def tune_gc() -> None:
    """Collect less often: far fewer pauses while replaying; memory stays bounded by the batches."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THROUGHPUT_GC_THRESHOLD)


class ProjectorService(ServiceProcess):
    """Maintains the ticket log view from the bus (see the module contract)."""

    name = "projector"

    def __init__(self, bus: Bus, settings: ServiceSettings, *, log_settings: TicketLogSettings) -> None:
        """Built by :func:`services.projector.bootstrap.build` (in production and in tests alike)."""
        super().__init__(bus, settings)
        self.log_settings = log_settings
        self.feeder: TicketLogFeeder | None = None

    async def main(self) -> None:
        where = self.log_settings.location()
        view = await asyncio.to_thread(open_ticket_log, self.log_settings)
        try:
            await self._check_not_ahead(view)
            projection = TicketLogProjection(view)
            self.feeder = TicketLogFeeder(
                projection,
                batch_size=self.log_settings.ticketlog_batch_size,
                max_batch=self.log_settings.ticketlog_max_batch,
                flush_interval_s=self.log_settings.ticketlog_flush_interval_s,
            )
            log.info("projecting the ticket log", extra={"view": where.describe(),
                                                          "tracked_seq": await asyncio.to_thread(view.tracked)})
            self.ready.set()
            await follow(self.bus, self.feeder, self.stopping)
            log.info("ticket log stopped", extra={"committed_seq": self.feeder.committed_seq,
                                                   "events": self.feeder.events, "batches": self.feeder.batches})
        finally:
            await asyncio.to_thread(view.close)

    async def _check_not_ahead(self, view: TicketLogView) -> None:
        tracked = await asyncio.to_thread(view.tracked)
        stream_last = await self.bus.last_seq()
        if tracked > stream_last:
            log.warning("the ticket log is ahead of the stream (it was reset): rebuilding the view from sequence 1",
                        extra={"tracked": tracked, "stream_last": stream_last})
            await asyncio.to_thread(view.clear)

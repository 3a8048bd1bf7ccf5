"""Building the projector: the ticket log's settings (its view under ``settings.home`` unless
``OPLAB_TICKETLOG_URL`` says otherwise), from the environment unless given."""

from __future__ import annotations

from events.bus import Bus
from projections.ticket_log import TicketLogSettings
from services.projector.service import ProjectorService
from services.runtime import ServiceSettings


def build(bus: Bus, settings: ServiceSettings, *, log_settings: TicketLogSettings | None = None) -> ProjectorService:
    return ProjectorService(bus, settings, log_settings=log_settings or TicketLogSettings(home=settings.home))

"""Queries on the ticket log (the projector's view), for ``oplab tickets``."""

from __future__ import annotations

from projections.ticket_log import TicketLogSettings, open_ticket_log
from projections.tickets import TicketState


def _settings() -> TicketLogSettings:
    settings = TicketLogSettings()
    # the projector runs with an absolute OPLAB_HOME; resolve ours the same way
    return settings.model_copy(update={"home": settings.home.resolve()})


def list_tickets(run: str | None, status: str | None, limit: int) -> list[TicketState]:
    view = open_ticket_log(_settings())
    try:
        return view.list_tickets(run=run, status=status, limit=limit)
    finally:
        view.close()


def get_ticket(ticket_id: str) -> TicketState | None:
    view = open_ticket_log(_settings())
    try:
        return view.get_ticket(ticket_id)
    finally:
        view.close()

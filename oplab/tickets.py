"""Queries on the ticket log (the projector's view), for ``oplab tickets``.

The view lives where the projector writes it (``<OPLAB_HOME>/ticketlog.sqlite``
or ``OPLAB_TICKETLOG_URL``). Where there is none - a container without the
projector's volume, a copied lab home, a projector that never ran - the query
folds the ticket events from the lab's log into a view in memory first and
says so: the log is the truth and every process that reaches NATS can read it,
so no answer is ever an empty one for want of a view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from events.bus import Bus, where
from events.settings import BusSettings
from events.subjects import ROOT
from projections.ticket_log import (
    POPOTicketLogView,
    TicketLogFeeder,
    TicketLogProjection,
    TicketLogSettings,
    TicketLogView,
    catch_up,
    open_ticket_log,
)
from projections.tickets import TicketState

Notice = Callable[[str], None]
NatsUrl = Callable[[], AbstractContextManager[str]]
"""Opens the lab's NATS for a query (``lambda: lab_nats_url(settings)``)."""

ALL_TICKETS = f"{ROOT}.*.ticket.>"
CONNECT_TIMEOUT_S = 5.0


def _settings() -> TicketLogSettings:
    settings = TicketLogSettings()
    # the projector runs with an absolute OPLAB_HOME; resolve ours the same way
    return settings.model_copy(update={"home": settings.home.resolve()})


def list_tickets(run: str | None, status: str | None, limit: int, *,
                 nats_url: NatsUrl | None = None,
                 notice: Notice = lambda _: None) -> list[TicketState]:
    with _view(nats_url, notice) as view:
        return view.list_tickets(run=run, status=status, limit=limit)


def get_ticket(ticket_id: str, *, nats_url: NatsUrl | None = None,
               notice: Notice = lambda _: None) -> TicketState | None:
    with _view(nats_url, notice) as view:
        return view.get_ticket(ticket_id)


@contextmanager
def _view(nats_url: NatsUrl | None, notice: Notice) -> Iterator[TicketLogView]:
    """The projector's view if there is one with anything in it, else a fold of the log."""
    settings = _settings()
    where = settings.location()
    if not (where.kind == "sqlite" and where.path is not None and not where.path.exists()):
        view = open_ticket_log(settings)
        if view.tracked() > 0 or nats_url is None:
            try:
                yield view
            finally:
                view.close()
            return
        view.close()
    scratch = POPOTicketLogView()
    if nats_url is None:
        yield scratch
        return
    try:
        with nats_url() as url:
            folded = asyncio.run(_fold(url, scratch))
    except Exception as exc:  # the answer is still given (empty), with the reason
        notice(f"no ticket-log view at {where.describe()}, and the lab's log is not reachable ({exc})")
    else:
        notice(f"no ticket-log view at {where.describe()}: folded {folded} ticket event(s) from the lab's log")
    yield scratch


async def _fold(url: str, view: TicketLogView) -> int:
    try:  # a connect to nothing retries for ever: bound it
        bus = await asyncio.wait_for(Bus.connect(BusSettings(nats_url=url), source="oplab-cli",
                                                 ensure_stream=False), CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise ConnectionError(f"NATS at {where(url)} did not answer within {CONNECT_TIMEOUT_S:.0f}s") from None
    try:
        return await catch_up(bus, TicketLogFeeder(TicketLogProjection(view)), filter_subject=ALL_TICKETS)
    finally:
        await bus.close()

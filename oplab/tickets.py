"""Queries on the ticket log (the projector's view), for ``oplab tickets``.

The view lives where the projector writes it (``<OPLAB_HOME>/ticketlog.sqlite``
or ``OPLAB_TICKETLOG_URL``). Where there is none - a container without the
projector's volume, a copied lab home, a projector that never ran - the query
folds the ticket events from the lab's log into a view in memory first and
says so: the log is the truth and every process that reaches NATS can read it,
so no answer is ever an empty one for want of a view.

A view that exists is checked against the log first (when the log is reachable):

- behind (its tracked position is before the stream's last sequence): the missing part is folded
  into the view itself - commits are exactly-once by tracking position, so this is safe beside a
  running projector - and the notice says how far behind it was;
- behind past events that aged out (the stream's first sequence is after the view's position + 1),
  or ahead of the stream (built from another log): nothing can be folded; the notice says so and
  names the rebuild command (:data:`REBUILD`). The answer is the view's, as it is.

``at`` (a position: sequence, time or age) answers from the tickets folded up to that point
instead (:func:`oplab.time_travel.tickets_at`), and says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from nats.js.errors import NotFoundError

from events.bus import Bus, where
from events.settings import BusSettings
from oplab.time_travel import ALL_TICKETS, OutOfSpan, describe_position, stored_span, tickets_at
from projections.retention import StreamWindow, run_completeness, stream_window
from projections.ticket_log import (
    POPOTicketLogView,
    TicketLogFeeder,
    TicketLogProjection,
    TicketLogSettings,
    TicketLogView,
    catch_up,
    open_ticket_log,
)
from tickets import TicketState

Notice = Callable[[str], None]
NatsUrl = Callable[[], AbstractContextManager[str]]
"""Opens the lab's NATS for a query (``lambda: lab_nats_url(settings)``)."""

REBUILD = "oplab projections rebuild ticket_log"
CONNECT_TIMEOUT_S = 5.0


def ticket_log_settings() -> TicketLogSettings:
    """The ticket log settings from the environment, with ``OPLAB_HOME`` made absolute."""
    settings = TicketLogSettings()
    # the projector runs with an absolute OPLAB_HOME; resolve ours the same way
    return settings.model_copy(update={"home": settings.home.resolve()})


def list_tickets(run: str | None, status: str | None, limit: int, *,
                 nats_url: NatsUrl | None = None,
                 notice: Notice = lambda _: None, at: str | None = None) -> list[TicketState]:
    """Tickets, newest first. ``at``: as they stood at that position of the log (of ``run`` when
    given); raises ``ValueError`` for a bad status or position, ``OutOfSpan`` outside the log."""
    if at is not None:
        return _at(nats_url, run, at, notice).list_tickets(run=run, status=status, limit=limit)
    with _view(nats_url, notice) as view:
        return view.list_tickets(run=run, status=status, limit=limit)


def get_ticket(ticket_id: str, *, nats_url: NatsUrl | None = None,
               notice: Notice = lambda _: None, at: str | None = None) -> TicketState | None:
    """One ticket by id; ``at`` as for :func:`list_tickets` (over every run)."""
    if at is not None:
        return _at(nats_url, None, at, notice).get_ticket(ticket_id)
    with _view(nats_url, notice) as view:
        return view.get_ticket(ticket_id)


@contextmanager
def _view(nats_url: NatsUrl | None, notice: Notice) -> Iterator[TicketLogView]:
    """The projector's view if there is one with anything in it, else a fold of the log."""
    settings = ticket_log_settings()
    where = settings.location()
    if not (where.kind == "sqlite" and where.path is not None and not where.path.exists()):
        view = open_ticket_log(settings)
        if view.tracked() > 0 or nats_url is None:
            try:
                if nats_url is not None:
                    _bring_up_to_date(view, nats_url, notice)
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


async def _connect(url: str) -> Bus:
    try:  # a connect to nothing retries for ever: bound it
        return await asyncio.wait_for(Bus.connect(BusSettings(nats_url=url), source="oplab-cli",
                                                  ensure_stream=False), CONNECT_TIMEOUT_S)
    except TimeoutError:
        raise ConnectionError(f"NATS at {where(url)} did not answer within {CONNECT_TIMEOUT_S:.0f}s") from None


async def _fold(url: str, view: TicketLogView) -> int:
    bus = await _connect(url)
    try:
        return await catch_up(bus, TicketLogFeeder(TicketLogProjection(view)), filter_subject=ALL_TICKETS)
    finally:
        await bus.close()


def _bring_up_to_date(view: TicketLogView, nats_url: NatsUrl, notice: Notice) -> None:
    """Fold what the view lacks of the log into it, or say why that cannot be done."""
    try:
        with nats_url() as url:
            asyncio.run(_catch_up(url, view, notice))
    except Exception as exc:  # the view still answers, as it is, with the reason it was not checked
        notice(f"the ticket log could not be checked against the lab's log ({exc}): answering from it as it is")


async def _catch_up(url: str, view: TicketLogView, notice: Notice) -> None:
    bus = await _connect(url)
    try:
        try:
            window = await stream_window(bus)
        except NotFoundError:  # no stream at all: the view can only be another log's
            window = StreamWindow(first_seq=0, last_seq=0)
        tracked = await asyncio.to_thread(view.tracked)
        if tracked > window.last_seq:
            notice(f"the ticket log is ahead of the lab's log (it has folded up to seq {tracked}, the log ends at "
                   f"seq {window.last_seq}): it was built from another log. Rebuild it: `{REBUILD}`")
        elif tracked < window.last_seq and window.first_seq > tracked + 1:
            notice(f"the ticket log is {window.last_seq - tracked} events behind the lab's log, and the events "
                   f"after its seq {tracked} aged out of the log (it now starts at seq {window.first_seq}): "
                   f"they cannot be folded. Rebuild it from what the log holds: `{REBUILD}`")
        elif tracked < window.last_seq:
            await catch_up(bus, TicketLogFeeder(TicketLogProjection(view)))
            notice(f"the ticket log was {window.last_seq - tracked} events behind the log: folded them")
    finally:
        await bus.close()


def _at(nats_url: NatsUrl | None, run: str | None, at: str, notice: Notice) -> TicketLogView:
    if nats_url is None:
        raise ValueError("--at needs the lab's log, and there is none to read")
    with nats_url() as url:
        return asyncio.run(_fold_at(url, run, at, notice))


async def _fold_at(url: str, run: str | None, at: str, notice: Notice) -> TicketLogView:
    bus = await _connect(url)
    try:
        span = await stored_span(bus, run)
        if span is None:
            raise OutOfSpan(f"the log holds no events of run {run}" if run else "the log holds no events")
        position = span.resolve(at)
        if run is not None and (gap := (await run_completeness(bus, run)).notice):
            notice(gap)
        view = await tickets_at(bus, run, position)
    finally:
        await bus.close()
    notice(f"the tickets as they stood at {describe_position(position)} ({span.describe()})")
    return view

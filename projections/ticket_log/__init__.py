"""The ticket log: an ``eventsourcing`` projection of the ``LAB`` stream, one row per ticket.

Read side of the ticket aggregate (``tickets``). The projector service
feeds it; the CLI (``oplab tickets list/show``) and anyone else query it::

    view = open_ticket_log()                # OPLAB_TICKETLOG_URL / OPLAB_HOME
    view.list_tickets(run=None, status="open", limit=20)
    view.get_ticket("tk-0123456789")
    view.max_tracking_id()                  # stream sequence folded so far (None: nothing yet)
    view.close()

Stores: SQLite (default, ``<OPLAB_HOME>/ticketlog.sqlite``), PostgreSQL
(``postgresql://...``), in-memory (``memory://``). See ``view`` for the contract
and ``projection`` for the exactly-once folding; ``rebuild`` re-folds a view from sequence 1
(swapped in atomically, safe beside a running projector) and verifies one against a fresh fold.
"""

from projections.ticket_log.factory import open_ticket_log
from projections.ticket_log.feed import TicketLogFeeder
from projections.ticket_log.projection import TICKET_TOPICS, TicketLogProjection, plan_batch
from projections.ticket_log.reading import catch_up, follow
from projections.ticket_log.rows import COLUMNS, TicketKey, from_row, to_row
from projections.ticket_log.settings import StoreLocation, TicketLogSettings, parse_store_url
from projections.ticket_log.sqlite import SQLiteTicketLogView
from projections.ticket_log.view import (
    APPLICATION_NAME,
    BatchChanges,
    POPOTicketLogView,
    TicketLogView,
)

__all__ = [
    "APPLICATION_NAME",
    "COLUMNS",
    "TICKET_TOPICS",
    "BatchChanges",
    "POPOTicketLogView",
    "SQLiteTicketLogView",
    "StoreLocation",
    "TicketKey",
    "TicketLogFeeder",
    "TicketLogProjection",
    "TicketLogSettings",
    "TicketLogView",
    "catch_up",
    "follow",
    "from_row",
    "open_ticket_log",
    "parse_store_url",
    "plan_batch",
    "to_row",
]


def __getattr__(name: str) -> object:
    """``PostgresTicketLogView`` is imported on demand (it needs psycopg)."""
    if name == "PostgresTicketLogView":
        from projections.ticket_log.postgres import PostgresTicketLogView

        return PostgresTicketLogView
    raise AttributeError(name)

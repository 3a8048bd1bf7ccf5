"""Opening the configured ticket log view."""

from __future__ import annotations

import logging

from projections.ticket_log.settings import TicketLogSettings
from projections.ticket_log.view import POPOTicketLogView, TicketLogView

log = logging.getLogger(__name__)


def open_ticket_log(settings: TicketLogSettings | None = None) -> TicketLogView:
    """The view ``settings`` (default: from the environment) point at, tables created.

    SQLite creates its directory and file if missing; PostgreSQL needs the
    database to exist (tables are created). Raises ``ValueError`` for a bad URL
    and the store's ``OperationalError``/``InterfaceError`` if it cannot be reached.
    Close the view when done.
    """
    settings = settings or TicketLogSettings()
    where = settings.location()
    if where.kind == "sqlite":
        from projections.ticket_log.sqlite import SQLiteTicketLogView

        assert where.path is not None
        view: TicketLogView = SQLiteTicketLogView.open(where.path)
    elif where.kind == "postgres":
        try:
            from projections.ticket_log.postgres import PostgresTicketLogView
        except ImportError as exc:
            raise RuntimeError("a postgresql:// ticket log needs psycopg: "
                               "pip install 'eventsourcing[postgres]' (psycopg[pool])") from exc
        view = PostgresTicketLogView.open(where)
    else:
        view = POPOTicketLogView()
    log.debug("ticket log opened", extra={"where": where.describe()})
    return view

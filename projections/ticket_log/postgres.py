"""The ticket log in PostgreSQL: a subclass of eventsourcing's ``PostgresTrackingRecorder``.

Needs ``psycopg[pool]`` (eventsourcing's ``postgres`` extra); this module is only
imported when a ``postgresql://`` URL is configured. Rows (``ticket_log``) and the
tracking table (``ticket_log_tracking``) share the datastore and one transaction
per batch. Each batch first takes a transaction-scoped advisory lock, so two
projectors never interleave: the tracked position read at the start of a batch
is the one its rows were folded from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, OperationalError, ProgrammingError
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from projections.ticket_log.rows import COLUMNS, DATETIME_COLUMNS, TABLE, from_row, iso, to_row
from projections.ticket_log.settings import StoreLocation
from projections.ticket_log.sql_view import SQLViewMixin
from projections.ticket_log.view import TicketLogView, check_status
from tickets.state import TicketState, TicketStatus

TRACKING_TABLE = "ticket_log_tracking"
_LOCK_KEY = 0x6F706C6162_7469  # "oplab"+"ti": one advisory lock for ticket log writers


class PostgresTicketLogView(SQLViewMixin, PostgresTrackingRecorder, TicketLogView):
    """The ticket log when ``OPLAB_TICKETLOG_URL=postgresql://...``."""

    CREATION_RACE = (IntegrityError, ProgrammingError)

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        schema = Identifier(self.datastore.schema)
        table = Identifier(TABLE)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} ("
                "run text NOT NULL, ticket_id text NOT NULL, status text NOT NULL, "
                "invariant text NOT NULL, entity text NOT NULL, subject text NOT NULL, "
                "summary text NOT NULL, opened_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, "
                "first_seen timestamptz NOT NULL, recurrences integer NOT NULL, claimed_by text, "
                "policy text, lease_until timestamptz, hypothesis text, actions jsonb NOT NULL, "
                "resolved_by text, outcome_note text, events integer NOT NULL, "
                "last_seq bigint NOT NULL, PRIMARY KEY (run, ticket_id))"
            ).format(schema, table),
            SQL("CREATE INDEX IF NOT EXISTS {2} ON {0}.{1} (ticket_id)").format(
                schema, table, Identifier(f"{TABLE}_ticket_id")),
            SQL("CREATE INDEX IF NOT EXISTS {2} ON {0}.{1} (opened_at)").format(
                schema, table, Identifier(f"{TABLE}_opened_at")),
            SQL("CREATE INDEX IF NOT EXISTS {2} ON {0}.{1} (status, opened_at)").format(
                schema, table, Identifier(f"{TABLE}_status")),
        ]
        updates = SQL(", ").join(
            SQL("{0}=EXCLUDED.{0}").format(Identifier(c)) for c in COLUMNS if c not in ("run", "ticket_id"))
        self._upsert_sql: Composed = SQL(
            "INSERT INTO {0}.{1} ({2}) VALUES ({3}) ON CONFLICT (run, ticket_id) DO UPDATE SET {4}"
        ).format(schema, table, SQL(", ").join(map(Identifier, COLUMNS)),
                 SQL(", ").join(SQL("%({})s").format(SQL(c)) for c in COLUMNS), updates)
        self._table = SQL("{0}.{1}").format(schema, table)
        self._delete_rows_sql = SQL("DELETE FROM {0}").format(self._table)
        self._delete_tracking_sql = SQL("DELETE FROM {0}.{1} WHERE application_name = %s").format(
            schema, Identifier(TRACKING_TABLE))

    @classmethod
    def open(cls, where: StoreLocation, *, connect_timeout_s: float = 5.0) -> PostgresTicketLogView:
        """Connect (a small pool) and create the tables if needed.

        Raises eventsourcing's ``OperationalError`` naming the server if it cannot be reached."""
        try:
            psycopg.connect(host=where.host, port=where.port, user=where.user, password=where.password,
                            dbname=where.dbname, connect_timeout=max(1, int(connect_timeout_s))).close()
        except psycopg.Error as exc:
            raise OperationalError(f"ticket log store {where.describe()} unreachable: {exc}") from exc
        datastore = PostgresDatastore(
            dbname=where.dbname, host=where.host, port=where.port, user=where.user,
            password=where.password, schema=where.schema, connect_timeout=connect_timeout_s,
            pool_size=2, max_overflow=2, pool_open_timeout=connect_timeout_s,
        )
        view = cls(datastore)
        try:
            view.create_table()
        except Exception:
            datastore.close()
            raise
        return view

    # -- for the shared transactions (projections.ticket_log.sql_view) ----

    def _lock_writers(self, curs: Cursor[DictRow]) -> None:
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))

    def _select_tickets(self, curs: Cursor[DictRow], run: str, ticket_ids: list[str]) -> list[DictRow]:
        curs.execute(SQL("SELECT * FROM {0} WHERE run = %s AND ticket_id = ANY(%s)").format(self._table),
                     (run, ticket_ids))
        return curs.fetchall()

    def _db_row(self, state: TicketState, last_seq: int) -> dict[str, Any]:
        """``to_row`` with aware UTC datetimes for the timestamptz columns."""
        row = to_row(state, last_seq)
        for column in DATETIME_COLUMNS:
            value = getattr(state, column)
            row[column] = None if value is None else datetime.fromisoformat(iso(value) or "")
        return row

    # -- reading ----------------------------------------------------------

    def list_tickets(self, run: str | None = None, status: str | TicketStatus | None = None,
                     limit: int | None = 100) -> list[TicketState]:
        where, params = _filters(run, check_status(status))
        sql = SQL("SELECT * FROM {0}{1} ORDER BY opened_at DESC, run, ticket_id").format(self._table, where)
        if limit is not None:
            sql = SQL("{0} LIMIT %s").format(sql)
            params.append(limit)
        return [from_row(r) for r in self._fetch_all(sql, params)]

    def get_ticket(self, ticket_id: str, run: str | None = None) -> TicketState | None:
        clauses = [SQL("ticket_id = %s")]
        params: list[Any] = [ticket_id]
        if run is not None:
            clauses.append(SQL("run = %s"))
            params.append(run)
        sql = SQL("SELECT * FROM {0} WHERE {1} ORDER BY updated_at DESC, run DESC LIMIT 1").format(
            self._table, SQL(" AND ").join(clauses))
        found = self._fetch_all(sql, params)
        return from_row(found[0]) if found else None

    def dump_rows(self) -> list[dict[str, Any]]:
        rows = self._fetch_all(SQL("SELECT * FROM {0} ORDER BY run, ticket_id").format(self._table))
        return [to_row(from_row(r), r["last_seq"]) for r in rows]


def _filters(run: str | None, status: str | None) -> tuple[Composed | SQL, list[Any]]:
    clauses: list[SQL] = []
    params: list[Any] = []
    if run is not None:
        clauses.append(SQL("run = %s"))
        params.append(run)
    if status is not None:
        clauses.append(SQL("status = %s"))
        params.append(status)
    if not clauses:
        return SQL(""), params
    return SQL(" WHERE {0}").format(SQL(" AND ").join(clauses)), params

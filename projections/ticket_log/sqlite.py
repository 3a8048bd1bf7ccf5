"""The ticket log in SQLite: a subclass of eventsourcing's ``SQLiteTrackingRecorder``.

Rows and the tracking record share the recorder's datastore and are written in
one transaction per batch (``SQLiteDatastore.transaction``). The file uses WAL
mode (set by the datastore), so the CLI reads while the projector writes.
Concurrent writers are safe: a batch's reads and writes form one transaction,
and a writer that lost a race fails (``IntegrityError`` from the tracking insert
or ``OperationalError`` "database is locked"/stale snapshot) without writing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError, OperationalError
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteTrackingRecorder

from projections.ticket_log.rows import COLUMNS, TABLE, from_row, to_row
from projections.ticket_log.sql_view import SQLViewMixin
from projections.ticket_log.view import TicketLogView, check_status
from tickets.state import TicketState, TicketStatus

_IN_CHUNK = 500  # keys per "IN (...)" (SQLite allows 32766 parameters; stay modest)


class SQLiteTicketLogView(SQLViewMixin, SQLiteTrackingRecorder, TicketLogView):
    """The default ticket log store (one file, e.g. ``.oplab/ticketlog.sqlite``)."""

    # two processes creating a new file's tables at once: the loser's migration record fails
    CREATION_RACE = (IntegrityError, OperationalError)

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)
        cols = ", ".join(COLUMNS)
        marks = ", ".join(f":{c}" for c in COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in COLUMNS if c not in ("run", "ticket_id"))
        self._upsert_sql = (f"INSERT INTO {TABLE} ({cols}) VALUES ({marks}) "
                            f"ON CONFLICT (run, ticket_id) DO UPDATE SET {updates}")
        self._delete_rows_sql = f"DELETE FROM {TABLE}"
        self._delete_tracking_sql = "DELETE FROM tracking WHERE application_name=?"

    @classmethod
    def open(cls, path: Path | str, *, lock_timeout_s: int = 10) -> SQLiteTicketLogView:
        """Open (creating the directory, file and tables if needed) the view at ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        view = cls(SQLiteDatastore(str(path), lock_timeout=lock_timeout_s, originator_id_type="text"))
        view.create_table()
        return view

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements += [
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            "run TEXT NOT NULL, ticket_id TEXT NOT NULL, status TEXT NOT NULL, "
            "invariant TEXT NOT NULL, entity TEXT NOT NULL, subject TEXT NOT NULL, "
            "summary TEXT NOT NULL, opened_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
            "first_seen TEXT NOT NULL, recurrences INTEGER NOT NULL, claimed_by TEXT, "
            "policy TEXT, lease_until TEXT, hypothesis TEXT, actions TEXT NOT NULL, "
            "resolved_by TEXT, outcome_note TEXT, events INTEGER NOT NULL, "
            "last_seq INTEGER NOT NULL, "
            "PRIMARY KEY (run, ticket_id)) WITHOUT ROWID",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_ticket_id ON {TABLE} (ticket_id)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_opened_at ON {TABLE} (opened_at)",
            f"CREATE INDEX IF NOT EXISTS {TABLE}_status ON {TABLE} (status, opened_at)",
        ]
        return statements

    # -- for the shared transactions (projections.ticket_log.sql_view) ----

    def _lock_for_swap(self, cursor: SQLiteCursor) -> None:
        # write first, so the write lock is taken (waiting its turn) before anything is read: a
        # transaction that read first fails at its first write if another writer committed since
        cursor.execute("UPDATE tracking SET notification_id = notification_id WHERE application_name=?",
                       [self.application_name])

    def _select_tickets(self, cursor: SQLiteCursor, run: str,
                        ticket_ids: list[str]) -> Iterator[Mapping[str, Any]]:
        for i in range(0, len(ticket_ids), _IN_CHUNK):
            chunk = ticket_ids[i:i + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor.execute(f"SELECT * FROM {TABLE} WHERE run=? AND ticket_id IN ({marks})", [run, *chunk])
            yield from cursor.fetchall()

    # -- reading ----------------------------------------------------------

    def list_tickets(self, run: str | None = None, status: str | TicketStatus | None = None,
                     limit: int | None = 100) -> list[TicketState]:
        where, params = _filters(run, check_status(status))
        sql = f"SELECT * FROM {TABLE}{where} ORDER BY opened_at DESC, run, ticket_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [from_row(r) for r in self._fetch_all(sql, params)]

    def get_ticket(self, ticket_id: str, run: str | None = None) -> TicketState | None:
        where, params = _filters(run, None)
        where = f"{where} AND ticket_id=?" if where else " WHERE ticket_id=?"
        params.append(ticket_id)
        found = self._fetch_all(f"SELECT * FROM {TABLE}{where} ORDER BY updated_at DESC, run DESC LIMIT 1", params)
        return from_row(found[0]) if found else None

    def dump_rows(self) -> list[dict[str, Any]]:
        rows = self._fetch_all(f"SELECT * FROM {TABLE} ORDER BY run, ticket_id")
        return [to_row(from_row(r), r["last_seq"]) for r in rows]


def _filters(run: str | None, status: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if run is not None:
        clauses.append("run=?")
        params.append(run)
    if status is not None:
        clauses.append("status=?")
        params.append(status)
    return (" WHERE " + " AND ".join(clauses) if clauses else "", params)

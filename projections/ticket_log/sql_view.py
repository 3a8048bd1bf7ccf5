"""What the SQL stores of the ticket log share: every transaction's steps, in their order.

:class:`SQLViewMixin` goes first among the bases of a store, before its eventsourcing tracking
recorder (``class SQLiteTicketLogView(SQLViewMixin, SQLiteTrackingRecorder, TicketLogView)``),
so its methods are the store's and ``super()`` reaches the recorder. The store gives the SQL
(in its own dialect and placeholder style) and says how it keeps writers apart:

- ``_upsert_sql`` (one row's columns as named placeholders), ``_delete_rows_sql`` and
  ``_delete_tracking_sql`` (one placeholder: the application name);
- :meth:`~SQLViewMixin._select_tickets`, the rows of some tickets of one run;
- :meth:`~SQLViewMixin._lock_writers`, taken first by a batch and by ``clear``, and
  :meth:`~SQLViewMixin._lock_for_swap`, taken first by ``replace_rows`` (by default the same);
- ``CREATION_RACE``, the errors a first creation of the tables raises when another process
  creates them at the same moment (then it is tried once more, on the tables now there).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Tracking

from projections.ticket_log.rows import TicketKey, from_row, to_row
from projections.ticket_log.view import APPLICATION_NAME, BatchChanges, BatchPlan
from tickets.state import TicketState


class SQLViewMixin:
    """The transactions of a ticket log kept in SQL (see the module doc for what a store gives)."""

    CREATION_RACE: tuple[type[Exception], ...] = ()
    # given by the tracking recorder the store also derives from
    datastore: Any
    application_name: str
    # given by the store, in its dialect
    _upsert_sql: Any
    _delete_rows_sql: Any
    _delete_tracking_sql: Any

    if TYPE_CHECKING:  # the tracking recorder's, with the store's cursor
        def _max_tracking_id(self, application_name: str, cursor: Any) -> int | None: ...
        def _insert_tracking(self, cursor: Any, tracking: Tracking) -> None: ...

    def create_table(self) -> None:
        """Create the tables if missing. Two processes opening a new store at once may race on the
        tracking table's migration record: the loser retries on the created table."""
        try:
            super().create_table()  # type: ignore[misc]
        except self.CREATION_RACE:
            self.tracking_table_exists = False
            self.tracking_migration_previous = self.tracking_migration_current = None
            super().create_table()  # type: ignore[misc]

    def max_tracking_id(self, application_name: str = APPLICATION_NAME) -> int | None:
        return super().max_tracking_id(application_name)  # type: ignore[misc]

    def close(self) -> None:
        self.datastore.close()

    # -- what a store gives -----------------------------------------------

    def _lock_writers(self, cursor: Any) -> None:
        """Keep other writers out until this transaction ends (default: nothing; the tracking
        insert then fails for the writer that lost a race)."""

    def _lock_for_swap(self, cursor: Any) -> None:
        """What ``replace_rows`` takes before it reads the tracked position (default: the writers' lock)."""
        self._lock_writers(cursor)

    def _select_tickets(self, cursor: Any, run: str, ticket_ids: list[str]) -> Iterable[Mapping[str, Any]]:
        """The stored rows of those tickets of ``run`` (any that exist)."""
        raise NotImplementedError

    def _db_row(self, state: TicketState, last_seq: int) -> dict[str, Any]:
        """The parameters of ``_upsert_sql`` for one row (default: the canonical row)."""
        return to_row(state, last_seq)

    # -- writing ----------------------------------------------------------

    def commit_batch(self, plan: BatchPlan) -> BatchChanges | None:
        with self.datastore.transaction(commit=True) as cursor:
            self._lock_writers(cursor)
            last = self._max_tracking_id(self.application_name, cursor)
            changes = plan(last, lambda keys: self._load(cursor, keys))
            if changes is None:
                return None
            self._write_rows(cursor, changes.rows)
            self._insert_tracking(cursor, changes.tracking)
            return changes

    def clear(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            self._lock_writers(cursor)
            cursor.execute(self._delete_rows_sql)
            cursor.execute(self._delete_tracking_sql, (self.application_name,))

    def replace_rows(self, rows: Sequence[tuple[TicketState, int]], position: int) -> bool:
        with self.datastore.transaction(commit=True) as cursor:
            self._lock_for_swap(cursor)
            if (self._max_tracking_id(self.application_name, cursor) or 0) > position:
                return False
            cursor.execute(self._delete_rows_sql)
            self._write_rows(cursor, rows)
            cursor.execute(self._delete_tracking_sql, (self.application_name,))
            self._insert_tracking(cursor, Tracking(self.application_name, position))
            return True

    def _write_rows(self, cursor: Any, rows: Sequence[tuple[TicketState, int]]) -> None:
        if rows:
            cursor.executemany(self._upsert_sql, [self._db_row(state, seq) for state, seq in rows])

    def _load(self, cursor: Any, keys: Collection[TicketKey]) -> dict[TicketKey, TicketState]:
        by_run: dict[str, list[str]] = defaultdict(list)
        for run, ticket_id in keys:
            by_run[run].append(ticket_id)
        found: dict[TicketKey, TicketState] = {}
        for run, ids in by_run.items():
            for row in self._select_tickets(cursor, run, ids):
                found[(row["run"], row["ticket_id"])] = from_row(row)
        return found

    # -- reading ----------------------------------------------------------

    def _fetch_all(self, sql: Any, params: Sequence[Any] = ()) -> list[Any]:
        """The rows ``sql`` selects, read in a transaction of their own."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

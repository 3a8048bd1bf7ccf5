"""The ticket log view: a tracking recorder holding one row per ticket.

Contract shared by every store (:class:`TicketLogView`):

- Rows are keyed by ``(run, ticket_id)``; each holds a :class:`TicketState` and the
  stream sequence of the last event folded into it.
- The tracking position is the JetStream stream sequence, recorded as
  ``Tracking(application_name="LAB", notification_id=seq)`` in the same
  transaction as the row changes (:meth:`TicketLogView.commit_batch`). A batch
  reads the tracked position inside its transaction, so sequences at or below it
  are never applied twice, whoever else writes the view.
- Tables are created on first use (:meth:`create_table`, idempotent); an empty
  view answers ``[]`` / ``None``.
- Queries (``list_tickets``, ``get_ticket``, ``max_tracking_id``) are synchronous and
  thread-safe; the projector calls the writer from a worker thread.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.popo import POPOTrackingRecorder

from projections.ticket_log.rows import TicketKey, key_of, to_row
from tickets.state import TicketState, TicketStatus

#: The tracked "application": the JetStream stream whose sequences we track.
APPLICATION_NAME = "LAB"

Loader = Callable[[Collection[TicketKey]], dict[TicketKey, TicketState]]
"""Loads the current rows for some keys, inside the batch's transaction."""


@dataclass(frozen=True)
class BatchChanges:
    """What one committed batch changed.

    ``rows`` are the new states of the tickets the batch touched, each with the
    sequence of the last event folded into it; ``tracking`` is the highest
    sequence of the batch (ticket event or not); ``events`` counts the batch's
    fresh (not yet tracked) events, ``skipped`` the ticket events that could not
    be folded (e.g. a ticket event before its ``ticket.opened``).
    """

    tracking: Tracking
    rows: Sequence[tuple[TicketState, int]] = ()
    events: int = 0
    skipped: int = 0
    first_seq: int = 0
    keys: frozenset[TicketKey] = field(default_factory=frozenset)


BatchPlan = Callable[[int | None, Loader], BatchChanges | None]
"""Given the tracked position and a loader, the changes to commit (None: nothing new)."""


def check_status(status: str | TicketStatus | None) -> str | None:
    """Validate a status filter; ``ValueError`` names the valid ones."""
    if status is None:
        return None
    try:
        return str(TicketStatus(status).value)
    except ValueError:
        valid = ", ".join(s.value for s in TicketStatus)
        raise ValueError(f"unknown ticket status {status!r} (one of: {valid})") from None


class TicketLogView(TrackingRecorder, abc.ABC):
    """A store of ticket rows with a tracking position (see the module contract)."""

    application_name: str = APPLICATION_NAME

    @abc.abstractmethod
    def create_table(self) -> None:
        """Create the tables if missing (idempotent)."""

    @abc.abstractmethod
    def max_tracking_id(self, application_name: str = APPLICATION_NAME) -> int | None:
        """The highest stream sequence folded (``None``: nothing yet). Resume from it ``+ 1``."""

    @abc.abstractmethod
    def commit_batch(self, plan: BatchPlan) -> BatchChanges | None:
        """In one transaction: read the tracked position, ask ``plan`` for the changes
        (it may load rows through the loader), write the rows and the tracking record.

        Raises the store's ``IntegrityError`` if another writer advanced the tracking
        position meanwhile (nothing is written then; retrying is safe)."""

    @abc.abstractmethod
    def list_tickets(self, run: str | None = None, status: str | TicketStatus | None = None,
                     limit: int | None = 100) -> list[TicketState]:
        """Tickets, newest opened first (ties by run, ticket id), optionally of one run / status."""

    @abc.abstractmethod
    def get_ticket(self, ticket_id: str, run: str | None = None) -> TicketState | None:
        """One ticket by id (ids are unique; if one recurs across runs, the latest updated)."""

    @abc.abstractmethod
    def dump_rows(self) -> list[dict[str, Any]]:
        """Every row in canonical form (``rows.to_row``), ordered by (run, ticket_id)."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Forget every row and the tracking position (before a rebuild), atomically."""

    @abc.abstractmethod
    def replace_rows(self, rows: Sequence[tuple[TicketState, int]], position: int) -> bool:
        """In one transaction: if the tracked position is at most ``position``, replace every row
        by ``rows`` (each a state and the sequence of its last event) and the tracked position by
        ``position``, and return True; otherwise change nothing and return False (the view moved
        beyond ``position`` meanwhile: fold further and try again). A rebuild's swap: whoever
        writes the view next resumes from ``position + 1``."""

    def close(self) -> None:
        """Release connections. The view must not be used afterwards."""

    def tracked(self) -> int:
        """The tracked stream sequence, 0 when nothing has been folded yet."""
        return self.max_tracking_id(APPLICATION_NAME) or 0


class POPOTicketLogView(POPOTrackingRecorder, TicketLogView):
    """An in-memory view (console, tests). Same contract, gone when the process ends."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[TicketKey, tuple[TicketState, int]] = {}

    def create_table(self) -> None:
        """Nothing to create."""

    def max_tracking_id(self, application_name: str = APPLICATION_NAME) -> int | None:
        return super().max_tracking_id(application_name)

    def commit_batch(self, plan: BatchPlan) -> BatchChanges | None:
        with self._database_lock:
            last = self._max_tracking_ids[self.application_name]

            def load(keys: Collection[TicketKey]) -> dict[TicketKey, TicketState]:
                return {k: self._rows[k][0] for k in keys if k in self._rows}

            changes = plan(last, load)
            if changes is None:
                return None
            self._assert_tracking_uniqueness(changes.tracking)
            for state, seq in changes.rows:
                self._rows[key_of(state)] = (state, seq)
            self._insert_tracking(changes.tracking)
            return changes

    def list_tickets(self, run: str | None = None, status: str | TicketStatus | None = None,
                     limit: int | None = 100) -> list[TicketState]:
        wanted = check_status(status)
        with self._database_lock:
            states = [s for s, _ in self._rows.values()
                      if (run is None or s.run == run) and (wanted is None or s.status == wanted)]
        states.sort(key=lambda s: (s.run, s.ticket_id))
        states.sort(key=lambda s: s.opened_at, reverse=True)
        return states if limit is None else states[:limit]

    def get_ticket(self, ticket_id: str, run: str | None = None) -> TicketState | None:
        with self._database_lock:
            found = [s for s, _ in self._rows.values()
                     if s.ticket_id == ticket_id and (run is None or s.run == run)]
        return max(found, key=lambda s: (s.updated_at, s.run)) if found else None

    def dump_rows(self) -> list[dict[str, Any]]:
        with self._database_lock:
            return [to_row(s, seq) for _, (s, seq) in sorted(self._rows.items())]

    def clear(self) -> None:
        with self._database_lock:
            self._rows.clear()
            self._max_tracking_ids.pop(self.application_name, None)

    def replace_rows(self, rows: Sequence[tuple[TicketState, int]], position: int) -> bool:
        with self._database_lock:
            if (self._max_tracking_ids.get(self.application_name) or 0) > position:
                return False
            self._rows = {key_of(state): (state, seq) for state, seq in rows}
            self._max_tracking_ids.pop(self.application_name, None)
            self._insert_tracking(Tracking(self.application_name, position))
            return True

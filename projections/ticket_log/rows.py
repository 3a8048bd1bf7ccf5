"""One ticket log row <-> :class:`TicketState`.

A row is every ``TicketState`` field plus ``last_seq`` (the stream sequence of the
last event folded into it). The encoding is canonical, so rows built by any
store, or by a rebuild, compare equal: datetimes are UTC ISO-8601 with
microseconds (a naive datetime is taken as UTC), ``actions`` is JSON with sorted
keys, ``status`` is the enum's value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tickets.state import TicketState

TABLE = "ticket_log"

#: Column order of the ``ticket_log`` table (primary key: run, ticket_id).
COLUMNS: tuple[str, ...] = (
    "run", "ticket_id", "status", "invariant", "entity", "subject", "summary",
    "opened_at", "updated_at", "first_seen", "recurrences", "claimed_by", "policy",
    "lease_until", "hypothesis", "actions", "resolved_by", "outcome_note", "events", "last_seq",
)
DATETIME_COLUMNS = frozenset({"opened_at", "updated_at", "first_seen", "lease_until"})

TicketKey = tuple[str, str]
"""``(run, ticket_id)``: a ticket log row's key."""


def key_of(state: TicketState) -> TicketKey:
    return (state.run, state.ticket_id)


def iso(value: datetime | None) -> str | None:
    """Canonical text of a datetime: UTC, microseconds, ``+00:00``. Sorts as it compares."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def actions_json(state: TicketState) -> str:
    return json.dumps([a.model_dump(mode="json") for a in state.actions],
                      sort_keys=True, separators=(",", ":"), default=str)


def to_row(state: TicketState, last_seq: int) -> dict[str, Any]:
    """The canonical row for ``state`` (text datetimes, JSON actions)."""
    return {
        "run": state.run,
        "ticket_id": state.ticket_id,
        "status": str(state.status.value),
        "invariant": state.invariant,
        "entity": state.entity,
        "subject": state.subject,
        "summary": state.summary,
        "opened_at": iso(state.opened_at),
        "updated_at": iso(state.updated_at),
        "first_seen": iso(state.first_seen),
        "recurrences": state.recurrences,
        "claimed_by": state.claimed_by,
        "policy": state.policy,
        "lease_until": iso(state.lease_until),
        "hypothesis": state.hypothesis,
        "actions": actions_json(state),
        "resolved_by": state.resolved_by,
        "outcome_note": state.outcome_note,
        "events": state.events,
        "last_seq": last_seq,
    }


def from_row(row: Mapping[str, Any]) -> TicketState:
    """A :class:`TicketState` from a stored row (text or native datetimes, JSON text or parsed)."""
    doc = {c: row[c] for c in COLUMNS if c != "last_seq"}
    actions = doc["actions"]
    doc["actions"] = json.loads(actions) if isinstance(actions, str | bytes) else (actions or [])
    for column in DATETIME_COLUMNS:
        value = doc[column]
        if isinstance(value, datetime) and value.tzinfo is None:
            doc[column] = value.replace(tzinfo=UTC)
    return TicketState.model_validate(doc)

"""Which of a run's events `oplab events` shows: types (globs), a correlation, a source, a range.

- ``types``: shell-style globs on the event type (``ticket.*``, ``chaos.fault_*``); a bare
  domain (``ticket``) means all of its types. Several: any of them.
- ``correlation``: the ticket or fault an event is about - its envelope's ``correlation``, or
  the ``ticket_id`` / ``fault_id`` its payload names.
- ``source``: the service that recorded it (``monitor``, or ``monitor/<instance>`` exactly).
- ``since`` / ``until``: inclusive bounds, each a stream sequence (``120``), a time
  (``2026-12-02T10:00:00Z``, or ``10:00:00`` on the run's first day) or an age (``-30s``, ``-5m``,
  ``-1h``: that long before now).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from events import Event
from events.type_docs import type_matches

_AGE = re.compile(r"^-(\d+(?:\.\d+)?)(s|m|h)$")
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Position:
    """A point of a run: a stream sequence or a moment."""

    seq: int | None = None
    at: datetime | None = None

    def before_or_at(self, seq: int, event: Event) -> bool:
        """Whether the event at ``seq`` is at or before this point."""
        if self.seq is not None:
            return seq <= self.seq
        assert self.at is not None  # a Position is one or the other
        return event.time <= self.at

    def at_or_after(self, seq: int, event: Event) -> bool:
        if self.seq is not None:
            return seq >= self.seq
        assert self.at is not None
        return event.time >= self.at


def parse_position(text: str, *, now: datetime, day: datetime | None = None) -> Position:
    """``text`` as a :class:`Position`; ValueError (saying what is accepted) if it is none.
    ``day``: the date a bare time of day falls on (the run's first event), default today."""
    text = text.strip()
    if text.isdigit():
        return Position(seq=int(text))
    if match := _AGE.match(text):
        return Position(at=now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)]))
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?", text):
            clock = time.fromisoformat(text)
            base = (day or now).astimezone(UTC)
            return Position(at=datetime.combine(base.date(), clock, tzinfo=UTC))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None:
        raise ValueError(f"{text!r} is not a position: give a sequence (120), a time (2026-12-02T10:00:00Z "
                         "or 10:00:00) or an age (-30s, -5m, -1h)")
    return Position(at=moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def correlation_keys(event: Event) -> set[str]:
    """What ``--correlation`` finds ``event`` by: its envelope's correlation and the ticket or fault
    its payload names."""
    named = {getattr(event.data, "ticket_id", None), getattr(event.data, "fault_id", None), event.correlation}
    return {key for key in named if isinstance(key, str) and key}


@dataclass(frozen=True)
class EventQuery:
    types: tuple[str, ...] = ()
    correlation: str | None = None
    source: str | None = None
    since: Position | None = None
    until: Position | None = None

    def matches(self, seq: int, event: Event) -> bool:
        return (self._type_matches(event) and self._correlated(event) and self._from_source(event)
                and (self.since is None or self.since.at_or_after(seq, event))
                and (self.until is None or self.until.before_or_at(seq, event)))

    def types_known(self, types: set[str]) -> bool:
        """Whether any of ``types`` (those a run has) matches the type filter at all."""
        return any(type_matches(t, p) for t in types for p in self.types)

    def _type_matches(self, event: Event) -> bool:
        if not self.types:
            return True
        return any(type_matches(event.type, p) for p in self.types)

    def _correlated(self, event: Event) -> bool:
        return self.correlation is None or self.correlation in correlation_keys(event)

    def _from_source(self, event: Event) -> bool:
        if self.source is None:
            return True
        return event.source == self.source or event.source.split("/", 1)[0] == self.source

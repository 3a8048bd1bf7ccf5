"""The lab as it stood at a point of its log: where a run (or the log) begins and ends, a position
checked against that span, and the tickets folded up to it.

A position (``oplab.event_query.parse_position``: a sequence, a time or an age) is inclusive. One
outside the span - before the run's first event or after its last - is refused with the span
(:class:`OutOfSpan`), never answered with an empty or final state. The tickets are folded with
the ticket log's own projection (``TicketLogProjection``) into a scratch view in memory: the
projector's view is never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nats.js.errors import NotFoundError

from events import Event
from events.bus import Bus
from events.codec import decode
from events.envelope import utcnow
from events.replay import Delivered
from events.settings import STREAM_NAME
from events.subjects import ALL_EVENTS, any_run_domain, run_domain, run_events
from oplab.event_query import Position, parse_position
from projections.ticket_log import POPOTicketLogView, TicketLogProjection

ALL_TICKETS = any_run_domain("ticket")
"""Every ticket event of every run."""


class OutOfSpan(ValueError):
    """A position before the first or after the last event of what is asked about."""


@dataclass(frozen=True)
class Point:
    """An event's place in the log."""

    seq: int
    time: datetime

    def describe(self) -> str:
        return f"seq {self.seq} ({self.time:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC)"


@dataclass(frozen=True)
class Span:
    """The first and last stored event of a run (or of the whole log)."""

    what: str
    first: Point
    last: Point

    def describe(self) -> str:
        return f"{self.what} spans {self.first.describe()} to {self.last.describe()}"

    def resolve(self, text: str, *, now: datetime | None = None) -> Position:
        """``text`` as a position inside this span; ``ValueError`` if it is no position,
        :class:`OutOfSpan` (naming the span) if it falls outside."""
        position = parse_position(text, now=now or utcnow(), day=self.first.time)
        if position.seq is not None:
            outside = position.seq < self.first.seq or position.seq > self.last.seq
        else:
            assert position.at is not None
            outside = position.at < self.first.time or position.at > self.last.time
        if outside:
            raise OutOfSpan(f"{text!r} is outside what the log holds: {self.describe()}")
        return position


def span_of(history: list[tuple[int, Event]], what: str) -> Span:
    """The span of events already read (in log order, at least one)."""
    (first_seq, first), (last_seq, last) = history[0], history[-1]
    return Span(what, Point(first_seq, first.time), Point(last_seq, last.time))


async def stored_span(bus: Bus, run: str | None) -> Span | None:
    """The span of ``run``'s stored events (None: the log holds none), or of the whole log."""
    subject = run_events(run) if run else ALL_EVENTS
    what = f"run {run}" if run else "the log"
    try:
        first = await bus.js.get_msg(STREAM_NAME, seq=1, subject=subject, next=True)
        last = await bus.js.get_last_msg(STREAM_NAME, subject)
    except NotFoundError:
        return None
    points = []
    for raw in (first, last):
        decoded = decode(raw.data or b"")
        if not isinstance(decoded, Event):
            raise ValueError(f"the event at seq {raw.seq} does not decode: {decoded.reason}")
        points.append(Point(raw.seq or 0, decoded.time))
    return Span(what, points[0], points[1])


async def tickets_at(bus: Bus, run: str | None, position: Position) -> POPOTicketLogView:
    """A scratch view of the tickets (of ``run``, else of every run) folded up to ``position``."""
    kept: list[Delivered] = []

    async def keep(delivered: Delivered) -> None:
        if position.before_or_at(delivered.seq, delivered.event):
            kept.append(delivered)

    await bus.replay(run_domain(run, "ticket") if run else ALL_TICKETS, keep)
    view = POPOTicketLogView()
    TicketLogProjection(view).process_batch(kept)
    return view


def describe_position(position: Position) -> str:
    """``seq 58`` or ``2026-12-01 20:02:28.000 UTC``."""
    if position.seq is not None:
        return f"seq {position.seq}"
    assert position.at is not None
    return f"{position.at:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC"

"""Rebuilding the ticket log from the stream, and checking a view against a fresh fold.

- :func:`compare_rows` (pure): the differences between two sets of canonical rows
  (``TicketLogView.dump_rows()``): a column that differs, a row one side lacks.
- :func:`rebuild`: folds the stream from sequence 1 into a scratch view (in memory), then swaps
  the scratch's rows and tracking position into the live view in ONE transaction
  (:meth:`TicketLogView.replace_rows`). Safe beside a running projector: the live view is never
  empty or half-built, and if the projector committed beyond the scratch meanwhile, the swap is
  refused, the scratch folds on up to where the live view is, and the swap is tried again. The
  projector's next batch then skips what the swap covered (commits are exactly-once by tracking
  position). A view ahead of the stream (built from another lab's log) is cleared first: nothing
  of it can be trusted.
- :func:`verify`: folds a scratch view up to the live view's tracked position and compares them
  row by row. The live rows and their position are read as one consistent snapshot.

Both fold through the projector's own catch-up (:func:`~projections.ticket_log.reading.catch_up`, up to
a sequence: a large log through a reader process) with the projector's subject filter (``lab.>``),
so the scratch's tracking means what the live one means.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from eventsourcing.persistence import IntegrityError, OperationalError

from events.bus import Bus
from events.settings import STREAM_NAME
from events.subjects import ALL_EVENTS
from projections.ticket_log.feed import TicketLogFeeder
from projections.ticket_log.projection import TicketLogProjection
from projections.ticket_log.reading import Progress, catch_up
from projections.ticket_log.rows import COLUMNS, from_row
from projections.ticket_log.view import POPOTicketLogView, TicketLogView
from tickets.state import TicketState

log = logging.getLogger(__name__)

SWAP_ATTEMPTS = 20
SNAPSHOT_ATTEMPTS = 20


@dataclass(frozen=True)
class RowDifference:
    """One way the live view differs from a rebuilt one.

    ``kind``: ``changed`` (``column`` holds ``live`` in the view and ``rebuilt`` in the fold),
    ``missing`` (the fold has the ticket, the view does not) or ``extra`` (only the view has it).
    """

    run: str
    ticket_id: str
    kind: Literal["changed", "missing", "extra"]
    column: str | None = None
    live: Any = None
    rebuilt: Any = None

    def describe(self) -> str:
        """One human line."""
        where = f"{self.ticket_id} (run {self.run})"
        if self.kind == "missing":
            return f"{where}: missing from the live view (the rebuild has it)"
        if self.kind == "extra":
            return f"{where}: only in the live view (the rebuild has no such ticket)"
        return f"{where} {self.column}: live {self.live!r}, rebuilt {self.rebuilt!r}"

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "ticket_id": self.ticket_id, "kind": self.kind, "column": self.column,
                "live": self.live, "rebuilt": self.rebuilt}


def compare_rows(live: list[dict[str, Any]], rebuilt: list[dict[str, Any]]) -> list[RowDifference]:
    """Every difference between two lists of canonical rows, ordered by (run, ticket id), then
    column order. Empty when they are equal."""
    live_by_key = {(r["run"], r["ticket_id"]): r for r in live}
    rebuilt_by_key = {(r["run"], r["ticket_id"]): r for r in rebuilt}
    out: list[RowDifference] = []
    for key in sorted(live_by_key.keys() | rebuilt_by_key.keys()):
        mine, theirs = live_by_key.get(key), rebuilt_by_key.get(key)
        if mine is None:
            out.append(RowDifference(*key, kind="missing"))
        elif theirs is None:
            out.append(RowDifference(*key, kind="extra"))
        else:
            out.extend(RowDifference(*key, kind="changed", column=c, live=mine.get(c), rebuilt=theirs.get(c))
                       for c in COLUMNS if mine.get(c) != theirs.get(c))
    return out


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did: ``events`` folded in ``seconds``, the view now at ``position``."""

    rows: int
    position: int
    events: int
    seconds: float
    swaps_refused: int = 0
    cleared_ahead: bool = False

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class VerifyResult:
    """A verification: the live view at ``position`` against a fold of the stream up to it."""

    rows: int
    position: int
    stream_last_seq: int
    differences: list[RowDifference]
    events: int
    seconds: float
    first_seq: int = 1
    """The stream's first sequence: above 1, the events before it aged out."""
    unverifiable: int = 0
    """Live rows whose tickets the log can no longer rebuild (their events aged out): not compared."""

    @property
    def ahead_of_stream(self) -> bool:
        """The view claims sequences the stream does not hold (another lab's log?)."""
        return self.position > self.stream_last_seq


def _scratch() -> tuple[POPOTicketLogView, TicketLogFeeder]:
    """A view in memory and its feeder. Commits of 1,000 events, not a catch-up's 10,000: a commit
    to memory is cheap, and progress is reported per commit, so the bar moves on a small log too."""
    scratch = POPOTicketLogView()
    return scratch, TicketLogFeeder(TicketLogProjection(scratch), max_batch=1000)


class HistoryAgedOut(RuntimeError):
    """The stream no longer starts at sequence 1: a rebuild would drop every ticket built from the
    events that aged out (their rows exist only in the view now)."""

    def __init__(self, first_seq: int) -> None:
        super().__init__(f"the log no longer holds its first {first_seq - 1} event(s) (they aged out of the "
                         "stream): a rebuild would drop the tickets the view built from them")
        self.first_seq = first_seq


async def first_seq(bus: Bus) -> int:
    """The stream's first stored sequence (1 until something aged out or was purged)."""
    info = await bus.js.stream_info(STREAM_NAME)
    return max(1, int(info.state.first_seq or 1))


async def rebuild(bus: Bus, view: TicketLogView, *, on_progress: Progress | None = None,
                  filter_subject: str = ALL_EVENTS, force: bool = False) -> RebuildResult:
    """Re-fold ``view`` from sequence 1 and swap the result in atomically (see the module doc).

    Raises :class:`HistoryAgedOut` when the stream's first events aged out (unless ``force``:
    then the view becomes what the log still holds), and ``RuntimeError`` if the live view kept
    moving beyond the scratch for :data:`SWAP_ATTEMPTS` swaps (a projector far faster than this fold)."""
    started = time.monotonic()
    first = await first_seq(bus)
    if first > 1 and not force:
        raise HistoryAgedOut(first)
    target = await bus.last_seq()
    cleared = False
    if await asyncio.to_thread(view.tracked) > target:
        log.warning("ticket log view is ahead of the stream: cleared before the rebuild", extra={"last_seq": target})
        await asyncio.to_thread(view.clear)
        cleared = True
    scratch, feeder = _scratch()
    await catch_up(bus, feeder, upto=target, on_progress=on_progress, filter_subject=filter_subject)
    for refused in range(SWAP_ATTEMPTS):
        rows = [(from_row(r), int(r["last_seq"])) for r in scratch.dump_rows()]
        if await _swap(view, rows, target):
            seconds = time.monotonic() - started
            log.info("ticket log rebuilt", extra={"rows": len(rows), "position": target, "events": feeder.events,
                                                  "elapsed_s": round(seconds, 3), "swaps_refused": refused})
            return RebuildResult(rows=len(rows), position=target, events=feeder.events, seconds=seconds,
                                 swaps_refused=refused, cleared_ahead=cleared)
        # the projector committed beyond the scratch meanwhile: catch up to it, swap again
        target = max(target, await asyncio.to_thread(view.tracked))
        await catch_up(bus, feeder, upto=target, on_progress=on_progress, filter_subject=filter_subject)
    raise RuntimeError(f"the ticket log kept moving beyond the rebuild ({SWAP_ATTEMPTS} swaps refused)")


async def _swap(view: TicketLogView, rows: list[tuple[TicketState, int]], position: int) -> bool:
    try:
        return await asyncio.to_thread(view.replace_rows, rows, position)
    except (IntegrityError, OperationalError) as exc:  # lost a race with a commit (SQLite: a stale snapshot)
        log.info("ticket log swap lost a race, retried", extra={"error": str(exc)})
        return False


def consistent_rows(view: TicketLogView) -> tuple[list[dict[str, Any]], int]:
    """The view's rows and the position they stand at, read so that no commit fell between
    (the position is read before and after the rows; a commit moves it)."""
    for _ in range(SNAPSHOT_ATTEMPTS):
        before = view.tracked()
        rows = view.dump_rows()
        if view.tracked() == before:
            return rows, before
    raise RuntimeError(f"the ticket log moved during {SNAPSHOT_ATTEMPTS} reads in a row")


async def verify(bus: Bus, view: TicketLogView, *, on_progress: Progress | None = None,
                 filter_subject: str = ALL_EVENTS) -> VerifyResult:
    """Fold a scratch view up to ``view``'s tracked position and compare the two row by row."""
    started = time.monotonic()
    live, position = await asyncio.to_thread(consistent_rows, view)
    last = await bus.last_seq()
    first = await first_seq(bus)
    scratch, feeder = _scratch()
    await catch_up(bus, feeder, upto=min(position, last), on_progress=on_progress, filter_subject=filter_subject)
    rebuilt = scratch.dump_rows()
    unverifiable = 0
    if first > 1:  # rows built from events that aged out cannot be re-folded: compare what the log still holds
        keys = {(r["run"], r["ticket_id"]) for r in rebuilt}
        kept = [r for r in live if (r["run"], r["ticket_id"]) in keys]
        unverifiable, live = len(live) - len(kept), kept
    differences = compare_rows(live, rebuilt)
    return VerifyResult(rows=len(live), position=position, stream_last_seq=last, differences=differences,
                        events=feeder.events, seconds=time.monotonic() - started, first_seq=first,
                        unverifiable=unverifiable)

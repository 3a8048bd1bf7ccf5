"""Paced replay of a recorded run: a terminal-free player that the console drives with keys.

:class:`ReplayPlayer` holds a run's history as a list of :class:`Recorded` (stream sequence,
event), a cursor (how many of them are folded into its :class:`~projections.lab_view.LabView`),
a speed and a paused flag. It folds through ``LabView.apply``, the fold the live console uses,
and its :meth:`~ReplayPlayer.clock` is the log's time. The screen at a position is therefore the
screen the live console showed at that moment, ages, countdowns and TTLs included.

Contract:

- **Pace.** While playing, the next event is folded once its recorded gap after the position,
  divided by the speed, has passed. A timer on the asyncio loop does this: no busy loop and no
  sleeping task. Events due at the same moment (within ``BATCH_SLACK_S``) fold in one batch and
  cause one ``on_change``. A late timer catches up (the pace is anchored on when each event was
  due) but never by more than ``MAX_CATCH_UP_S``.
- **Idle gaps.** A gap longer than ``IDLE_GAP_CAP_S`` (2 s) of wall time at the current speed
  is cut to 2 s: the clock runs at the replay pace for those 2 s, then jumps to the next event.
  A run that idled for minutes does not freeze the screen, and every busy stretch keeps its
  recorded pace.
- **Clock.** The log time of the position (the latest event time folded, as
  ``LabView.now()``). While playing it also advances at ``speed`` x real time between two
  events (never past the next one), so countdowns tick as they did live. When paused, stepped
  or at the end it is exactly the position's time.
- **Verbs.** :meth:`~ReplayPlayer.toggle_pause` (on resume the current gap starts again from
  the position); :meth:`~ReplayPlayer.step` folds exactly one event and leaves the player
  paused; :meth:`~ReplayPlayer.next_chapter` folds everything up to and including the next
  ``director.chapter_started`` and keeps the pause state; :meth:`~ReplayPlayer.faster` /
  :meth:`~ReplayPlayer.slower` double / halve the speed within x0.25 .. x64 (a speed outside
  that range, given at the start, is only ever brought towards it); :meth:`~ReplayPlayer.seek`
  folds at once up to an index. Folding only goes forward: a fold cannot be undone.
- **End.** After the last event the player is ``ended`` and ``finished`` is set. The view
  stays on the final state (the header says END) until the console quits.
- **Waiting.** :meth:`~ReplayPlayer.wait_until` returns once a condition on the player holds,
  or raises TimeoutError after its deadline. Tests synchronise on positions this way, never
  on sleeps.

Before :meth:`~ReplayPlayer.load` (the history is still being read) the player is not
``loaded`` and its verbs do nothing. :func:`read_history` reads a run from the bus, and
:func:`chapter_starts` / :func:`index_at_or_after` find start positions in it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from console.waiters import Waiters
from events import ChapterStarted, Event
from events.bus import Bus
from projections.lab_view import LabView

log = logging.getLogger(__name__)

IDLE_GAP_CAP_S = 2.0
MIN_SPEED = 0.25
MAX_SPEED = 64.0
BATCH_SLACK_S = 0.002
MAX_CATCH_UP_S = 1.0


@dataclass(frozen=True, slots=True)
class Recorded:
    """One event of the history, with its stream sequence."""

    seq: int
    event: Event


def fmt_speed(speed: float) -> str:
    """``x0.25``, ``x1``, ``x64``."""
    return f"x{speed:g}"


@dataclass(frozen=True, slots=True)
class ReplayStatus:
    """What the console shows about a replay: where it is, how fast, paused or at the end."""

    seq: int | None  # the stream sequence of the last folded event (None before the first)
    at: datetime | None  # that event's recorded time
    speed: float
    paused: bool
    ended: bool
    loaded: bool = True

    def label(self, *, compact: bool = False) -> str:
        """``REPLAY #58 20:02:28.70 x4 PAUSED`` (no hundredths when ``compact``; no speed at the END)."""
        if not self.loaded:
            return "REPLAY loading…"
        where = "start"
        if self.seq is not None and self.at is not None:
            at = self.at.astimezone(UTC)
            clock = at.strftime("%H:%M:%S") if compact else f"{at:%H:%M:%S}.{at.microsecond // 10_000:02d}"
            where = f"#{self.seq} {clock}"
        if self.ended:
            return f"REPLAY {where} END"
        return f"REPLAY {where} {fmt_speed(self.speed)}{' PAUSED' if self.paused else ''}"


Condition = Callable[["ReplayPlayer"], bool]


class ReplayPlayer:
    """Plays a recorded run into a LabView at its recorded pace x ``speed`` (see the module docstring)."""

    def __init__(self, view: LabView, history: Sequence[Recorded] | None = None, *, speed: float = 1.0,
                 on_change: Callable[[], None] | None = None, idle_gap_cap_s: float = IDLE_GAP_CAP_S) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.view = view
        self.history: list[Recorded] = []
        self.loaded = False
        self.cursor = 0  # history[:cursor] is folded
        self.speed = speed
        self.paused = False
        self.on_change = on_change
        self.idle_gap_cap_s = idle_gap_cap_s
        self.errors = 0
        self.finished = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0  # loop time the next event is (or was) due
        self._anchor = 0.0  # loop time of the position, for the pace and the clock
        self._waiters: Waiters[ReplayPlayer] = Waiters()
        if history is not None:
            self.load(history)

    # -- state --------------------------------------------------------------

    def load(self, history: Sequence[Recorded]) -> None:
        """Take the run's history (in stream order); the player starts before its first event."""
        self.history = list(history)
        self.loaded = True
        self._changed()

    @property
    def ended(self) -> bool:
        return self.loaded and self.cursor >= len(self.history)

    @property
    def playing(self) -> bool:
        """Started, not paused and not at the end."""
        return self._loop is not None and not self.paused and not self.ended

    @property
    def position(self) -> Recorded | None:
        """The last folded event (None before the first)."""
        return self.history[self.cursor - 1] if self.cursor else None

    @property
    def seq(self) -> int | None:
        position = self.position
        return position.seq if position is not None else None

    def status(self) -> ReplayStatus:
        position = self.position
        return ReplayStatus(seq=position.seq if position else None, at=position.event.time if position else None,
                            speed=self.speed, paused=self.paused, ended=self.ended, loaded=self.loaded)

    def clock(self) -> datetime:
        """The log time of the position, advancing at the replay pace while playing (never past the next event)."""
        base = self.view.now()
        if base is None:
            return self.history[0].event.time if self.history else datetime.now(UTC)
        if not self.playing or self._loop is None:
            return base
        ran = max(0.0, self._loop.time() - self._anchor) * self.speed
        upcoming = self.history[self.cursor].event.time
        return min(base + timedelta(seconds=ran), max(base, upcoming))

    # -- verbs --------------------------------------------------------------

    def toggle_pause(self) -> None:
        """Pause, or resume from the position (the gap to the next event starts again)."""
        if not self.loaded or self.ended:
            return
        self.paused = not self.paused
        self._restart_pace()
        self._changed()

    def step(self) -> bool:
        """Fold exactly one event and stay paused; False at the end."""
        if not self.loaded or self.ended:
            return False
        self.paused = True
        self._fold(self.cursor + 1)
        self._restart_pace()
        self._changed()
        return True

    def next_chapter(self) -> bool:
        """Fold up to and including the next ``director.chapter_started``; False if no chapter starts later."""
        if not self.loaded:
            return False
        for index in range(self.cursor, len(self.history)):
            if self.history[index].event.type == ChapterStarted.TYPE:
                self._fold(index + 1)
                self._restart_pace()
                self._changed()
                return True
        return False

    def seek(self, index: int) -> None:
        """Fold at once every event before ``index`` (forward only: an earlier index folds nothing)."""
        self._fold(min(max(index, 0), len(self.history)))
        self._restart_pace()
        self._changed()

    def faster(self) -> None:
        """Double the speed, up to x64."""
        if self.speed < MAX_SPEED:
            self.set_speed(min(MAX_SPEED, self.speed * 2))

    def slower(self) -> None:
        """Halve the speed, down to x0.25."""
        if self.speed > MIN_SPEED:
            self.set_speed(max(MIN_SPEED, self.speed / 2))

    def set_speed(self, speed: float) -> None:
        """Change the pace; the replayed part of the current gap is kept."""
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        if self._loop is not None:
            now = self._loop.time()
            ran_log_s = max(0.0, now - self._anchor) * self.speed
            self._anchor = now - ran_log_s / speed
        self.speed = speed
        self._schedule()
        self._changed()

    # -- playing ------------------------------------------------------------

    def start(self) -> None:
        """Start playing on the running loop from the position (call once loaded)."""
        self._loop = asyncio.get_running_loop()
        self._restart_pace()
        self._changed()

    async def play(self) -> None:
        """Play until the end (:meth:`start`, then wait for ``finished``); cancelling stops the timer."""
        self.start()
        try:
            await self.finished.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the timer and fail pending waiters; the view keeps what was folded."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiters.cancel_all()

    def _restart_pace(self) -> None:
        """The position is now: the next gap is measured from this moment."""
        if self._loop is None:
            return
        self._anchor = self._loop.time()
        self._schedule()

    def _gap_s(self, index: int) -> float:
        """Wall seconds between the position and event ``index`` at the current speed, idle gaps capped."""
        base = self.view.now()
        if base is None:
            return 0.0
        gap = max(0.0, (self.history[index].event.time - base).total_seconds()) / self.speed
        return min(gap, self.idle_gap_cap_s)

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is None or self.paused or not self.loaded or self.ended:
            return
        self._due = self._anchor + self._gap_s(self.cursor)
        self._timer = self._loop.call_at(self._due, self._on_timer)

    def _on_timer(self) -> None:
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        due = max(self._due, now - MAX_CATCH_UP_S)
        end = self.cursor
        while True:  # the batch: every event due by now
            end += 1
            self._fold(end)
            self._anchor = due
            if self.ended:
                break
            due = self._anchor + self._gap_s(self.cursor)
            if due > now + BATCH_SLACK_S:
                break
        self._schedule()
        self._changed()

    # -- folding and waiting ------------------------------------------------

    def _fold(self, until: int) -> None:
        """Fold history[cursor:until]. A fold bug is logged and counted in ``errors``; the replay goes on."""
        for index in range(self.cursor, until):
            event = self.history[index].event
            try:
                self.view.apply(event)
            except Exception:
                self.errors += 1
                log.exception("replay fold failed",
                              extra={"seq": self.history[index].seq, "type": event.type, "id": event.id})
        self.cursor = max(self.cursor, until)

    def _changed(self) -> None:
        if self.ended and not self.finished.is_set():
            self.finished.set()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._waiters.check(self)
        if self.on_change is not None:
            self.on_change()

    async def wait_until(self, condition: Condition, timeout_s: float) -> None:
        """Return once ``condition(player)`` holds (checked after every change); TimeoutError after ``timeout_s``."""
        await self._waiters.wait_until(self, condition, timeout_s)


# -- the history and positions in it ----------------------------------------------------------------


async def read_history(bus: Bus, run: str) -> list[Recorded]:
    """Every stored event of run ``run``, in stream order (:meth:`~events.bus.Bus.run_history`), as the player
    holds them."""
    return [Recorded(seq, event) for seq, event in await bus.run_history(run)]


def chapter_starts(history: Sequence[Recorded]) -> list[tuple[int, ChapterStarted]]:
    """(index in ``history``, payload) of every ``director.chapter_started``, in order."""
    return [(i, r.event.data) for i, r in enumerate(history) if isinstance(r.event.data, ChapterStarted)]


def index_at_or_after(history: Sequence[Recorded], *, seq: int | None = None, at: datetime | None = None
                      ) -> int | None:
    """Index of the first event with a sequence >= ``seq`` (or a time >= ``at``); None if there is none."""
    for i, r in enumerate(history):
        if (seq is not None and r.seq >= seq) or (at is not None and r.event.time >= at):
            return i
    return None

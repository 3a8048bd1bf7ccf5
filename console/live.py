"""Live and replay modes: fold a run's events from the bus into a LabView, and show it.

- :class:`LiveFeed` is the terminal-free part: it subscribes with
  ``bus.replay(events.subjects.run_events(run), handler, follow=True)``, folds
  every event into its :class:`~projections.lab_view.LabView` and calls
  ``on_change`` after each. ``caught_up`` is set once the stored history has
  been folded; :meth:`LiveFeed.wait_until` waits (with a deadline) for a
  condition on the view, which is how tests synchronise.
- :func:`run_console` wires a feed to a :class:`~console.app.ConsoleApp` and
  runs until the user quits. The screen is up before the history is read, so a
  long log or an empty one (no run events yet) both start cleanly.

Replay mode plays the stored log instead of following it, through a
:class:`~console.replay.ReplayPlayer` (pace, idle gaps, keys and the end: see
:mod:`console.replay`): at once by default, or at the recorded pace x
``replay_speed``, from the start or from a given index. Its clock is the log's time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import urwid

from console.app import ConsoleApp, Decide, NextChapter
from console.replay import Recorded, ReplayPlayer, read_history
from console.waiters import Waiters
from events import Event
from events.bus import Bus
from events.replay import Delivered, Replay
from events.subjects import run_events
from projections.lab_view import LabView
from tickets.approvals import ActionRef, decide

log = logging.getLogger(__name__)

Predicate = Callable[[LabView], bool]


class LiveFeed:
    """Folds one run's events from the bus into a LabView."""

    def __init__(self, bus: Bus, run: str, view: LabView | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.bus = bus
        self.run = run
        self.view = view if view is not None else LabView(run)
        self.on_change = on_change
        self.caught_up = asyncio.Event()
        self.done = asyncio.Event()
        self.errors = 0
        self._replay: Replay | None = None
        self._watch: asyncio.Task[None] | None = None
        self._waiters: Waiters[LabView] = Waiters()

    # -- folding ------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event, wake satisfied waiters, tell the UI. Never raises: a fold bug
        is logged and counted in ``errors``, and the feed goes on."""
        try:
            folded = self.view.apply(event)
        except Exception:
            self.errors += 1
            log.exception("console fold failed", extra={"type": event.type, "id": event.id})
            return
        if not folded:
            return
        self._waiters.check(self.view)
        if self.on_change is not None:
            self.on_change()

    async def _handle(self, delivered: Delivered) -> None:
        self.apply(delivered.event)

    async def wait_until(self, predicate: Predicate, timeout_s: float) -> None:
        """Return once ``predicate(view)`` holds; raise TimeoutError after ``timeout_s``."""
        await self._waiters.wait_until(self.view, predicate, timeout_s)

    # -- subscription -------------------------------------------------------

    async def start(self, *, follow: bool = True) -> None:
        """Subscribe. With ``follow`` this returns at once and folds new events as they come;
        without, it returns after the stored history has been folded."""
        self._replay = await self.bus.replay(run_events(self.run), self._handle, follow=follow)
        if follow:
            self._watch = asyncio.get_running_loop().create_task(self._mark_caught_up(self._replay))
        else:
            self._caught_up()

    async def _mark_caught_up(self, replay: Replay) -> None:
        await replay.caught_up.wait()
        self._caught_up()

    def _caught_up(self) -> None:
        self.caught_up.set()
        log.info("console caught up", extra={"run": self.run, "events": self.view.events})
        if self.on_change is not None:
            self.on_change()

    async def stop(self) -> None:
        """Unsubscribe and fail pending waiters; the view keeps what was folded."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._replay is not None:
            replay, self._replay = self._replay, None
            await replay.stop()
        self._waiters.cancel_all()
        self.done.set()


def store_decider(bus: Bus, run: str, by: str | None = None) -> Decide:
    """Decisions from the console's keys, saved on the ticket through the TicketStore."""
    import getpass

    who = by or f"console:{getpass.getuser()}"

    async def decide_action(ticket_id: str, action_id: str, approve: bool, reason: str) -> None:
        await decide(bus, ActionRef(run, ticket_id, action_id, ""), approve=approve, by=who, reason=reason)

    return decide_action


async def run_console(
    bus: Bus,
    run: str,
    on_next: NextChapter | None = None,
    replay: bool = False,
    *,
    on_decide: Decide | None = None,
    replay_speed: float | None = None,
    history: list[Recorded] | None = None,
    start: int = 0,
    screen: urwid.BaseScreen | None = None,
    app_kwargs: dict[str, Any] | None = None,
    notice: str | None = None,
) -> LabView:
    """Show run ``run`` until the user quits; returns the folded view.

    Live (default): follows ``lab.<run>.>`` from the start of the log, so
    history and new events alike are folded, and space/right call
    ``on_next``. Replay: plays the stored log only, ``history`` if given (read
    from the bus once the screen is up if not): every event before index
    ``start`` is folded at once, then the rest at the recorded pace x
    ``replay_speed`` (None or 0: all at once); the keys drive the
    :class:`~console.replay.ReplayPlayer` and the clock is the log's time.
    ``on_decide`` (live only) approves or rejects a pending action (see
    :class:`~console.app.ConsoleApp`). ``notice``: shown in the footer from the start (a replay
    of a run whose beginning aged out of the log says so).
    """
    view = LabView(run)
    if on_decide is None and not replay:
        on_decide = store_decider(bus, run)
    player = ReplayPlayer(view, speed=replay_speed or 1.0) if replay else None
    app = ConsoleApp(view, None if replay else on_next, on_decide=None if replay else on_decide, live=not replay,
                     screen=screen, replay=player, **(app_kwargs or {}))
    if notice:  # e.g. a replay of a run whose beginning aged out of the log: said on screen, not hidden
        app.widget.status = notice
    feed = LiveFeed(bus, run, view, on_change=app.invalidate)

    async def feed_task() -> None:
        if player is None:
            await feed.start(follow=True)
            return
        player.on_change = app.invalidate
        player.load(history if history is not None else await read_history(bus, run))
        if not replay_speed:
            player.seek(len(player.history))
            return
        player.seek(start)
        await player.play()

    task = asyncio.get_running_loop().create_task(feed_task())

    def feed_done(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is not None:
            log.error("console feed failed", extra={"error": repr(t.exception())})
            app.set_status(f"feed failed: {t.exception()!r}")

    task.add_done_callback(feed_done)
    try:
        await app.run()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if player is not None:
            player.stop()
        await feed.stop()
    return view

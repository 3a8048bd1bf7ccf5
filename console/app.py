"""The console application: an urwid MainLoop on the asyncio loop it shares with nats-py.

Contract of :class:`ConsoleApp`:

- :meth:`run` (a coroutine) starts the screen on the *running* asyncio loop
  (``urwid.AsyncioEventLoop(loop=...)``), returns when the user quits (``q``)
  or :meth:`quit` is called, and always restores the terminal.
- :meth:`invalidate` is what the feed calls after folding events: it schedules
  at most one redraw (``redraw_delay_s`` later, 50 ms by default) however many
  events arrive meanwhile, and that redraw calls ``draw_screen()`` itself,
  since updates that do not come from input are not painted by urwid. A burst
  of thousands of events thus costs one render per 50 ms, and an event is on
  screen at most ~50 ms + one render after it was folded.
- While live, a tick every ``tick_s`` redraws countdowns, ages and TTLs.
- ``space`` / ``right`` call ``on_next`` (the CLI wires it to a
  ``cmd.director.next`` request); its failure is shown in the footer, never
  raised. ``q`` / ``Q`` quit.
- Manual approval: actions waiting for a human are listed at the bottom of the
  agent panel, one highlighted; ``tab`` moves the highlight, ``a`` approves it
  and ``r`` asks why it is rejected: a prompt (:class:`~console.widgets.RejectPrompt`)
  opens over the screen and takes every key while open (typing ``q`` or ``a``
  there neither quits nor approves). ``enter`` rejects with the typed reason
  (an empty one falls back to "rejected at the console"), ``esc`` closes the
  prompt and rejects nothing. The action is the one highlighted when ``r`` was
  pressed. Decisions go through ``on_decide(ticket_id, action_id, approve,
  reason)`` (the CLI wires it to the ticket store, which refuses a decision on
  an action no longer pending); the outcome shows in the footer. Without a
  running screen (only :meth:`handle_key` driven) the prompt takes its keys
  from :meth:`handle_key` all the same.
- Paced replay (``replay``, a :class:`~console.replay.ReplayPlayer`): the clock is the player's
  (the log time of its position), a tick redraws every ``tick_s`` as live, and the keys drive the
  player: ``space`` pauses and resumes, ``right`` steps one event (and pauses), ``n`` jumps to the
  next chapter, ``+`` / ``-`` double / halve the speed, ``q`` quits. The header shows the
  position, the speed and PAUSED or END, the footer these keys. Live mode is untouched by it.

The app never logs to the terminal it draws on; the caller should send logging
to a file while the console runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import urwid

from console.format import PALETTE
from console.panels import action_call
from console.replay import ReplayPlayer
from console.screen import LabScreen
from console.widgets import PROMPT_COLS, RejectPrompt, prompt_overlay
from projections.lab_view import LabView

log = logging.getLogger(__name__)

NextChapter = Callable[[], Awaitable[Any]]
Decide = Callable[[str, str, bool, str], Awaitable[Any]]

REJECT_REASON = "rejected at the console"

NEXT_KEYS = frozenset({" ", "right"})
QUIT_KEYS = frozenset({"q", "Q"})


def wall_clock() -> datetime:
    return datetime.now(UTC)


class ConsoleApp:
    """Owns the urwid MainLoop showing one :class:`LabView`."""

    def __init__(
        self,
        view: LabView,
        on_next: NextChapter | None = None,
        *,
        on_decide: Decide | None = None,
        live: bool = True,
        screen: urwid.BaseScreen | None = None,
        clock: Callable[[], datetime] | None = None,
        redraw_delay_s: float = 0.05,
        tick_s: float = 1.0,
        replay: ReplayPlayer | None = None,
    ) -> None:
        """``clock`` defaults to the wall clock when live, to ``replay``'s clock in a paced replay and to
        the log's latest time in any other replay."""
        self.view = view
        self.on_next = on_next
        self.live = live
        self.screen = screen
        self.replay = replay
        self.clock = clock or (wall_clock if live else replay.clock if replay is not None else self._log_clock)
        self.redraw_delay_s = redraw_delay_s
        self.tick_s = tick_s
        self.on_decide = on_decide
        self.widget = LabScreen(view, self.clock, live=live, can_advance=on_next is not None)
        self.widget.can_decide = on_decide is not None and live
        if replay is not None:
            self.widget.replay_status = replay.status
        self.main_loop: urwid.MainLoop | None = None
        self.prompt: RejectPrompt | None = None  # the open reject prompt, if any
        self.redraws = 0
        self.next_requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._quit: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _log_clock(self) -> datetime:
        return self.view.now() or wall_clock()

    # -- lifecycle ----------------------------------------------------------

    async def run(self) -> None:
        """Show the console until the user quits; the terminal is restored on any exit."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._quit = asyncio.Event()
        kwargs: dict[str, Any] = {}
        if self.screen is not None:
            kwargs["screen"] = self.screen
        self.main_loop = urwid.MainLoop(
            self.widget, PALETTE, event_loop=urwid.AsyncioEventLoop(loop=loop),
            unhandled_input=self.handle_key, handle_mouse=False, **kwargs,
        )
        previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._exception_handler(previous_handler))
        started = False
        try:
            self.main_loop.start()
            started = True
            if (self.live or self.replay is not None) and self.tick_s > 0:
                self._tick = loop.call_later(self.tick_s, self._on_tick)
            await self._quit.wait()
        finally:
            self._cancel_timers()
            self._close_prompt()
            for task in list(self._tasks):
                task.cancel()
            try:
                if started:
                    self.main_loop.stop()
            finally:
                loop.set_exception_handler(previous_handler)
                self.main_loop = None

    def quit(self) -> None:
        """Make :meth:`run` return (safe to call at any time, also before it runs)."""
        if self._quit is not None:
            self._quit.set()

    @property
    def quit_requested(self) -> bool:
        """``q`` was pressed or :meth:`quit` called (while running)."""
        return self._quit is not None and self._quit.is_set()

    @property
    def running(self) -> bool:
        return self.main_loop is not None

    @property
    def redraw_pending(self) -> bool:
        """A coalesced redraw is scheduled (never more than one)."""
        return self._pending is not None

    def _exception_handler(self, previous: Any) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
        """ExitMainLoop from an urwid callback quits; anything else goes to the previous handler."""

        def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if isinstance(context.get("exception"), urwid.ExitMainLoop):
                self.quit()
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        return handle

    # -- redraws ------------------------------------------------------------

    def invalidate(self) -> None:
        """The view changed: redraw soon. At most one redraw is ever pending."""
        if self._pending is not None or self._loop is None or self.main_loop is None:
            return
        self._pending = self._loop.call_later(self.redraw_delay_s, self._redraw)

    def _redraw(self) -> None:
        if self._pending is not None:  # a direct call (tick) supersedes the scheduled one
            self._pending.cancel()
            self._pending = None
        if self.main_loop is None:
            return
        self.widget.refresh()
        try:
            self.main_loop.draw_screen()
        except Exception:  # a broken frame must not kill the feed; the next redraw may succeed
            log.exception("console redraw failed")
        self.redraws += 1

    def _on_tick(self) -> None:
        if self._loop is None or self.main_loop is None:
            return
        if self.tick_s > 0:
            self._tick = self._loop.call_later(self.tick_s, self._on_tick)
        self._redraw()

    def _cancel_timers(self) -> None:
        for handle in (self._pending, self._tick):
            if handle is not None:
                handle.cancel()
        self._pending = self._tick = None

    # -- input --------------------------------------------------------------

    def handle_key(self, key: Any) -> bool:
        """Keys no widget used: next chapter, quit, approvals. Returns True if handled.

        While the reject prompt is open every key is the prompt's (a key sent
        here directly is passed to it).
        """
        if self.prompt is not None:
            if isinstance(key, str):
                self.prompt.keypress((self._prompt_cols(),), key)
            return True
        if key in QUIT_KEYS:
            self.quit()
            return True
        if self.replay is not None and self._replay_key(key):
            return True
        if key in NEXT_KEYS:
            self.request_next()
            return True
        if key == "a" and self.widget.can_decide:
            self.decide(approve=True)
            return True
        if key == "r" and self.widget.can_decide:
            self.ask_reject_reason()
            return True
        if key == "tab" and self.widget.can_decide:
            self.select_next_approval()
            return True
        if key == "window resize":
            self.invalidate()
            return True
        return False

    def _replay_key(self, key: Any) -> bool:
        """The replay's keys (see the module docstring); True if ``key`` was one."""
        player = self.replay
        assert player is not None
        status = ""
        if key == " ":
            player.toggle_pause()
        elif key == "right":
            if not player.step():
                status = "end of the run: q quits"
        elif key in ("n", "N"):
            if not player.next_chapter():
                status = "no later chapter"
        elif key in ("+", "="):  # '=' is '+' without shift
            player.faster()
        elif key == "-":
            player.slower()
        else:
            return False
        if player.ended and not status:
            status = "end of the run: q quits"
        self.set_status(status)
        return True

    def request_next(self) -> None:
        """Ask for the next chapter (no-op without ``on_next``); the outcome shows in the footer."""
        if self.on_next is None:
            self.set_status("replay: chapters follow the log" if not self.live else "no director attached")
            return
        self.next_requests += 1
        self.set_status("next chapter requested…")
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(self._next())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _next(self) -> None:
        assert self.on_next is not None
        try:
            await self.on_next()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("next chapter request failed", extra={"error": repr(exc)})
            self.set_status(f"next failed: {exc.__class__.__name__} {exc}".strip())
            return
        self.set_status("")

    # -- approvals ----------------------------------------------------------

    def highlighted_approval(self) -> tuple[str, str] | None:
        """(ticket id, action id) of the highlighted pending action; the first one if none is."""
        pending = self.view.pending_approvals()
        if not pending:
            self.widget.selected = None
            return None
        for ticket, action in pending:
            if action.action_id == self.widget.selected:
                return ticket.ticket_id, action.action_id
        ticket, action = pending[0]
        self.widget.selected = action.action_id
        return ticket.ticket_id, action.action_id

    def select_next_approval(self) -> None:
        pending = [a.action_id for _, a in self.view.pending_approvals()]
        if not pending:
            self.set_status("no action is waiting for approval")
            return
        current = self.widget.selected
        index = (pending.index(current) + 1) % len(pending) if current in pending else 0
        self.widget.selected = pending[index]
        self.invalidate()

    def decide(self, *, approve: bool, reason: str = REJECT_REASON) -> None:
        """Approve or reject (with ``reason``) the highlighted pending action; the outcome shows in the footer."""
        target = self.highlighted_approval()
        if target is None or self.on_decide is None:
            self.set_status("no action is waiting for approval")
            return
        self._send_decision(*target, approve=approve, reason="" if approve else reason)

    def ask_reject_reason(self) -> None:
        """Open the reject prompt for the highlighted pending action (see the module docstring)."""
        target = self.highlighted_approval()
        if target is None or self.on_decide is None:
            self.set_status("no action is waiting for approval")
            return
        ticket_id, action_id = target
        ticket = self.view.tickets.get(ticket_id)
        action = ticket.action(action_id) if ticket is not None else None
        what = f"{ticket_id} {action_call(action) if action is not None else action_id}"

        def submit(reason: str) -> None:
            self._close_prompt()
            self._send_decision(ticket_id, action_id, approve=False, reason=reason or REJECT_REASON)

        def cancel() -> None:
            self._close_prompt()
            self.set_status(f"{action_id}: not rejected")

        self.prompt = RejectPrompt(action_id, what, default_reason=REJECT_REASON, on_submit=submit,
                                   on_cancel=cancel)
        if self.main_loop is not None:  # without a screen, keys reach the prompt through handle_key
            self.main_loop.widget = prompt_overlay(self.prompt, self.widget)
        self.widget.prompting = True
        self.set_status("")
        self.widget.refresh()

    def _close_prompt(self) -> None:
        if self.prompt is None:
            return
        self.prompt = None
        self.widget.prompting = False
        if self.main_loop is not None:
            self.main_loop.widget = self.widget
        self.widget.refresh()

    def _prompt_cols(self) -> int:
        """Width of the prompt's box for a key sent through :meth:`handle_key` (the screen may be narrower)."""
        size = self.main_loop.screen_size if self.main_loop is not None else None
        return min(PROMPT_COLS, size[0]) if size else PROMPT_COLS

    def _send_decision(self, ticket_id: str, action_id: str, *, approve: bool, reason: str) -> None:
        self.set_status(f"{'approving' if approve else 'rejecting'} {action_id}…")
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(self._decide(ticket_id, action_id, approve, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decide(self, ticket_id: str, action_id: str, approve: bool, reason: str) -> None:
        assert self.on_decide is not None
        try:
            await self.on_decide(ticket_id, action_id, approve, reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("decision failed",
                        extra={"ticket": ticket_id, "action": action_id, "approve": approve, "error": repr(exc)})
            self.set_status(f"{action_id}: {exc}".strip())
            return
        self.set_status(f"{'approved' if approve else 'rejected'} {action_id}")

    def set_status(self, text: str) -> None:
        """Show ``text`` in the footer (empty clears it)."""
        self.widget.status = text
        self.invalidate()

"""The urwid console: panels folded from the log, live or replayed.

- ``format``, ``narration``, ``panels``: pure functions from a :class:`~projections.lab_view.LabView` to lines
  of urwid markup (formatting and fitting; the narration and what a chapter highlights; every other panel)
- ``layout``: the table of panels fitted to a terminal size, and the urwid widgets of one size filled from a view
- ``widgets``: urwid building blocks that know no view (a panel slot, a bar, the reject prompt);
  ``screen``: :class:`~console.screen.LabScreen`, the view on screen, one layout per size
- ``app``: :class:`ConsoleApp`, the MainLoop on the shared asyncio loop (coalesced redraws, keys)
- ``live``: :class:`LiveFeed` (bus -> LabView) and :func:`run_console`, what the CLI calls
"""

from console.app import ConsoleApp
from console.live import LiveFeed, run_console

__all__ = ["ConsoleApp", "LiveFeed", "run_console"]

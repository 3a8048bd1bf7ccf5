"""The urwid console: panels folded from the log, live or replayed.

- ``widgets``: pure render functions from a :class:`~projections.lab_view.LabView` to urwid widgets
- ``app``: :class:`ConsoleApp`, the MainLoop on the shared asyncio loop (coalesced redraws, keys)
- ``live``: :class:`LiveFeed` (bus -> LabView) and :func:`run_console`, what the CLI calls
"""

from console.app import ConsoleApp
from console.live import LiveFeed, run_console

__all__ = ["ConsoleApp", "LiveFeed", "run_console"]

"""The shape every fold of one run's events shares: which run, and one handler per event type.

A :class:`RunFold` subclass fills ``handlers`` (event type -> ``handler(payload, time)``) in its
constructor. :meth:`RunFold.apply` ignores events of other runs (the first event fixes the run
when none was given) and events without a handler; it never raises on a well-formed event
unless a handler does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from events import Event

Handler = Callable[[Any, datetime], None]


class RunFold:
    """Base of the pure, in-memory folds of one run (``apply(event)`` in log order, no I/O)."""

    def __init__(self, run: str | None = None) -> None:
        self.run = run
        self.handlers: dict[str, Handler] = {}

    def apply(self, event: Event) -> bool:
        """Fold one event; True if it belonged to this run."""
        if self.run is None:
            self.run = event.run
        elif event.run != self.run:
            return False
        handler = self.handlers.get(event.type)
        if handler is not None:
            handler(event.data, event.time)
        return True

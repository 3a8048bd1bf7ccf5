"""The widget the console app shows: :class:`LabScreen`, a :class:`~projections.lab_view.LabView` on screen.

It keeps one :class:`~console.layout.ScreenLayout` per terminal size and updates
it when the view's ``version``, the displayed second or the status line changed;
only lines whose text changed are re-set (so cached canvases are reused).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import urwid

from console.layout import ScreenLayout
from console.replay import ReplayStatus
from projections.lab_view import LabView


class LabScreen(urwid.Widget):
    """Box widget showing a LabView; updates only when something it shows may have changed.

    ``clock`` gives "now" for ages and countdowns (wall clock live, the log's
    time in replay). Call :meth:`refresh` after the view changed or the clock
    ticked: it invalidates urwid's canvas cache so the next draw re-renders.
    The layout is built once per terminal size and kept; an update re-sets only
    the lines whose text changed, when the view's ``version``, the displayed
    second or the status line moved.
    """

    _sizing = frozenset([urwid.Sizing.BOX])
    _selectable = False

    def __init__(self, view: LabView, clock: Callable[[], datetime], *, live: bool = True,
                 can_advance: bool = True) -> None:
        super().__init__()
        self.view = view
        self.clock = clock
        self.live = live
        self.can_advance = can_advance
        self.status = ""
        self.can_decide = False
        self.selected: str | None = None  # the highlighted pending approval (action id)
        self.prompting = False  # the reject prompt is open: the footer shows its keys
        self.replay_status: Callable[[], ReplayStatus] | None = None  # set in a paced replay
        self.updates = 0
        self._layouts: dict[tuple[int, int], ScreenLayout] = {}
        self._keys: dict[tuple[int, int], tuple[Any, ...]] = {}

    def refresh(self) -> None:
        self._invalidate()

    def render(self, size: tuple[int, int], focus: bool = False) -> urwid.Canvas:  # type: ignore[override]
        now = self.clock()
        layout = self._layouts.get(size)
        if layout is None:
            if len(self._layouts) > 4:  # resizes: keep only a few layouts around
                self._layouts.clear()
                self._keys.clear()
            layout = self._layouts[size] = ScreenLayout(size)
        replay = self.replay_status() if self.replay_status is not None else None
        key = (self.view.version, int(now.timestamp()), self.status, self.selected, self.prompting, replay)
        if self._keys.get(size) != key:
            layout.update(self.view, now, live=self.live, can_advance=self.can_advance, status=self.status,
                          can_decide=self.can_decide, selected=self.selected, prompting=self.prompting,
                          replay=replay)
            self._keys[size] = key
            self.updates += 1
        return layout.widget.render(size, focus=focus)

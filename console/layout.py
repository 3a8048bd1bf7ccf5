"""The screen's layout: one table of panels (:data:`PANELS`), fitted to any terminal size.

The screen is a header row, a body and a footer row. Two layouts share the
table, each a column of it (a :class:`Place` per panel, ``None``: not shown):

- ``compact`` from 40x10 (80x24 is its design size): panels titled by a rule,
  no borders, at most two panels side by side; its panels are narrow
  (:attr:`Style.narrow`): the incident timeline flows its moments into lines,
  a fault line splits in two so its TTL shows, the workload panel has a short title;
- ``wide`` from 120x40 (200x60 is its design size): boxed panels, the narration
  on top, two columns of stacked panels below, a services panel; one moment a line;
- below 40x10 (``tiny``) only a "terminal too small" notice shows.

:func:`fit` is the one function that turns the table into a :class:`Geometry`
for a size (pure arithmetic, no urwid), top down: the body is cut into bands
(each as tall as its tallest column wants, in order while rows last, the last
band takes the rest); each band into columns (each as wide as its widest panel
wants, the last column takes the rest); each column into its panels (in order,
the last panel takes the rest). A :class:`Want` is a share of the length being
cut, at least ``least`` and at most ``most``: panels get their least first while
the screen has room, one with a ``most`` stops growing there, and what the
others leave goes to the last panel of a column (the agent timeline, the
services). A panel's place and wants are data: change the table, not the code.

:class:`ScreenLayout` builds the urwid widgets of a geometry once per size and
:meth:`ScreenLayout.update` fills them from a view (only changed lines are
re-set). Each panel has a fixed number of rows and shows what fits: lists are
cut with a "+N more" line, the agent and incident timelines show their newest.
:func:`build_screen` / :func:`render_text` do it all in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal

import urwid

from console.narration import chapter_focus, is_incident_ticket, narration_lines, narration_title
from console.panels import (
    agent_lines,
    agent_title,
    chaos_lines,
    cluster_lines,
    footer_parts,
    header_parts,
    incident_lines,
    incident_title,
    services_lines,
    ticket_lines,
    workload_lines,
)
from console.replay import ReplayStatus
from console.subject_rows import rows_for
from console.widgets import Bar, PanelSlot
from projections.lab_view import LabView

LayoutName = Literal["compact", "wide"]


@dataclass(frozen=True, slots=True)
class Want:
    """How much of a length (rows or columns) a part wants: ``share`` of it, at least ``least``, at most ``most``."""

    least: int = 0
    share: Fraction = Fraction(0)
    most: int | None = None

    def of(self, total: int) -> int:
        """The length wanted out of ``total`` (exact arithmetic: a share is rounded down)."""
        want = max(self.least, int(total * self.share))
        return want if self.most is None else min(want, self.most)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a panel goes in one layout, and how big it wants to be.

    ``band``: its band, top to bottom; ``column``: its column in the band, left
    to right (panels of one column stack in table order). ``rows``: of the body
    for the band's height, then of the band for its place in the column (the last
    panel of a column takes the rest). ``cols``: the column's width (the widest
    want of its panels; the last column takes the rest). ``margin``: columns kept
    free right of its text, besides a box's borders.
    """

    band: int
    rows: Want = Want()
    column: int = 0
    cols: Want = Want()
    margin: int = 0


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel of the screen: its name, its place in each layout, whether a cut list keeps its newest lines."""

    name: str
    compact: Place | None
    wide: Place | None
    tail: bool = False
    title_attr: str = "title"

    def place(self, layout: LayoutName) -> Place | None:
        """Its place in ``layout`` (``None``: that layout does not show it)."""
        return self.compact if layout == "compact" else self.wide


@dataclass(frozen=True, slots=True)
class Style:
    """How a layout draws its panels; it is used from ``min_size`` (cols, rows) up."""

    name: LayoutName
    min_size: tuple[int, int]
    boxed: bool  # a box around each panel, else a title rule
    divide: int  # blank columns between side-by-side panels
    narrow: bool  # panels too narrow for one moment or one fault a line (see the module docstring)


Q = Fraction  # shares are exact: a Want of Q(1, 4) of 22 rows is 5
_LEFT = Want(50, Q(2, 5), 80)  # the wide layout's left column

PANELS: tuple[Panel, ...] = (
    # name         compact: band, rows, column, cols              wide: band, rows, column, cols
    Panel("narration", Place(0, Want(5, Q(1, 4), 6)), Place(0, Want(7)), title_attr="chapter"),
    Panel("cluster", Place(1, Want(5, Q(1, 4), 7), 0, Want(0, Q(1, 2))), Place(1, Want(7, Q(1, 4)), 0, _LEFT)),
    Panel("workload", Place(1, Want(5, Q(1, 4), 7), 1), Place(1, Want(7, Q(1, 4)), 0, _LEFT)),
    Panel("chaos", Place(2, Want(4, Q(1, 5), 5), 0, Want(24, Q(1, 3))), Place(1, Want(6, Q(1, 6)), 0, _LEFT)),
    Panel("services", None, Place(1, Want(), 0, _LEFT)),
    Panel("tickets", Place(2, Want(4, Q(1, 5), 5), 1), Place(1, Want(8, Q(1, 4)), 1)),
    Panel("incident", Place(3, Want(3, Q(1, 6), 4)), Place(1, Want(6, Q(1, 4), 12), 1), tail=True),
    # the compact agent timeline wraps the model's thoughts 2 columns short of the edge (as it always did)
    Panel("agent", Place(4, margin=2), Place(1, Want(), 1), tail=True),
)

# the first whose min_size the screen reaches is used
LAYOUTS: tuple[Style, ...] = (
    Style("wide", (120, 40), boxed=True, divide=0, narrow=False),
    Style("compact", (40, 10), boxed=False, divide=1, narrow=True),
)


@dataclass(frozen=True, slots=True)
class FittedPanel:
    """A panel's size on the screen: ``rows`` and ``cols`` with its title and borders; ``text_cols`` for its text."""

    panel: Panel
    rows: int
    cols: int
    text_cols: int


@dataclass(frozen=True, slots=True)
class FittedColumn:
    """A column of a band: its width and its panels, top to bottom."""

    cols: int
    panels: tuple[FittedPanel, ...]


@dataclass(frozen=True, slots=True)
class FittedBand:
    """A band of the body: its height and its columns, left to right."""

    rows: int
    columns: tuple[FittedColumn, ...]


@dataclass(frozen=True, slots=True)
class Geometry:
    """The body of a screen of ``size`` in bands of columns of panels (no bands: the screen is too small)."""

    size: tuple[int, int]
    style: Style | None
    bands: tuple[FittedBand, ...] = ()
    panels: dict[str, FittedPanel] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"wide"``, ``"compact"`` or ``"tiny"`` (below every layout's minimum size)."""
        return "tiny" if self.style is None else self.style.name


def split(total: int, wants: list[int]) -> list[int]:
    """Give each part what it wants, in order, while ``total`` lasts; the last part takes the rest."""
    out: list[int] = []
    left = total
    for want in wants[:-1]:
        take = max(0, min(want, left))
        out.append(take)
        left -= take
    out.append(max(0, left))
    return out


def fit(size: tuple[int, int]) -> Geometry:
    """The geometry of :data:`PANELS` on a screen of ``size`` (cols, rows), as the module docstring tells.

    The body is ``rows - 2`` rows (header, footer) of ``cols`` columns; the
    bands' rows add up to it, and in each band the columns' widths plus the
    dividers add up to ``cols`` and every column's panels to the band's rows.
    """
    cols, rows = size
    style = next((s for s in LAYOUTS if cols >= s.min_size[0] and rows >= s.min_size[1]), None)
    if style is None:
        return Geometry(size, None)
    grid: dict[int, dict[int, list[tuple[Panel, Place]]]] = {}
    for panel in PANELS:
        place = panel.place(style.name)
        if place is not None:
            grid.setdefault(place.band, {}).setdefault(place.column, []).append((panel, place))
    bands = [[grid[b][c] for c in sorted(grid[b])] for b in sorted(grid)]
    body = rows - 2
    band_rows = split(body, [max(sum(place.rows.of(body) for _, place in column) for column in band)
                             for band in bands])
    borders = 2 if style.boxed else 0
    fitted: list[FittedBand] = []
    by_name: dict[str, FittedPanel] = {}
    for band, height in zip(bands, band_rows, strict=True):
        free = cols - style.divide * (len(band) - 1)
        widths = split(free, [max(place.cols.of(free) for _, place in column) for column in band])
        columns: list[FittedColumn] = []
        for column, width in zip(band, widths, strict=True):
            heights = split(height, [place.rows.of(height) for _, place in column])
            stack = tuple(FittedPanel(panel, h, width, max(0, width - borders - place.margin))
                          for (panel, place), h in zip(column, heights, strict=True))
            by_name.update((p.panel.name, p) for p in stack)
            columns.append(FittedColumn(width, stack))
        fitted.append(FittedBand(height, tuple(columns)))
    return Geometry(size, style, tuple(fitted), by_name)


def _pile(items: list[tuple[int, urwid.Widget]]) -> urwid.Widget:
    """Stack box widgets with exact heights (zero-height ones are dropped)."""
    kept = [("given", h, w) for h, w in items if h > 0]
    return urwid.Pile(kept) if kept else urwid.SolidFill(" ")


class ScreenLayout:
    """The widgets of the whole screen for one size; :meth:`update` refreshes them from a view.

    ``kind`` is ``"wide"`` from 120x40, ``"compact"`` from 40x10, else ``"tiny"``
    (:data:`LAYOUTS`); ``geometry`` is :func:`fit`'s for the size.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.geometry = fit(size)
        self.kind = self.geometry.kind
        self.header = Bar("header")
        self.footer = Bar("footer")
        self.slots: dict[str, PanelSlot] = {}
        self.text_cols = {name: p.text_cols for name, p in self.geometry.panels.items()}
        style = self.geometry.style
        if style is None:
            self._tiny = urwid.Text("", wrap="ellipsis")
            self.widget: urwid.Widget = urwid.Filler(self._tiny, valign="top")
            return
        bands: list[tuple[int, urwid.Widget]] = []
        for band in self.geometry.bands:
            columns: list[tuple[int, urwid.Widget]] = []
            for column in band.columns:
                stack = [(p.rows, self._slot(p, style)) for p in column.panels]
                columns.append((column.cols, stack[0][1] if len(stack) == 1 else _pile(stack)))
            if len(columns) == 1:
                bands.append((band.rows, columns[0][1]))
            else:  # the last column takes what the others leave (their widths are fitted)
                bands.append((band.rows, urwid.Columns([*columns[:-1], columns[-1][1]], dividechars=style.divide)))
        self.widget = _pile([(1, self.header.widget), (size[1] - 2, _pile(bands)), (1, self.footer.widget)])

    def _slot(self, fitted: FittedPanel, style: Style) -> urwid.Widget:
        panel = fitted.panel
        slot = self.slots[panel.name] = PanelSlot(fitted.rows, boxed=style.boxed, tail=panel.tail,
                                                  title_attr=panel.title_attr)
        return slot.widget

    def update(self, view: LabView, now: datetime, *, live: bool = True, can_advance: bool = True,
               status: str = "", can_decide: bool = False, selected: str | None = None,
               prompting: bool = False, replay: ReplayStatus | None = None) -> None:
        """Show ``view`` as of ``now`` (``replay``: the replay's state, for the header and footer);
        only changed lines are re-set."""
        cols, rows = self.size
        style = self.geometry.style
        if style is None:
            smallest = min(LAYOUTS, key=lambda s: s.min_size)
            self._tiny.set_text(f"terminal too small ({cols}x{rows}); need at least "
                                f"{smallest.min_size[0]}x{smallest.min_size[1]} (designed for 80x24 and up)")
            return
        self.header.show(header_parts(view, now, cols, replay))
        self.footer.show(footer_parts(view, live=live, can_advance=can_advance, status=status, cols=cols,
                                      can_decide=can_decide, prompting=prompting, replay=replay))
        slots, text_cols = self.slots, self.text_cols
        narrow = style.narrow
        narration = slots["narration"]
        narration.show(narration_title(view), narration_lines(view, now, text_cols["narration"], narration.room))
        subject_rows = rows_for(view)
        slots["cluster"].show(subject_rows.cluster_title, cluster_lines(view, now, subject_rows))
        slots["workload"].show("Workload" if narrow else subject_rows.workload_title,
                               workload_lines(view, now, limit=max(1, slots["workload"].room), rows=subject_rows))
        focus = chapter_focus(view)
        slots["chaos"].show("Chaos", chaos_lines(view, now, text_cols["chaos"] if narrow else None, focus.fault))
        slots["tickets"].show("Tickets", ticket_lines(view, now, slots["tickets"].room, focus.ticket))
        incident = slots["incident"]
        incident.show(incident_title(view), incident_lines(view, width=text_cols["incident"] if narrow else None,
                                                           room=incident.room, stages=focus.stages))
        agent = slots["agent"]
        shown = view.current_ticket()
        steps = focus.step_kinds if shown is not None and is_incident_ticket(view, shown.ticket_id) else frozenset()
        agent.show(agent_title(view), agent_lines(view, agent.room, text_cols["agent"], selected, steps))
        if "services" in slots:
            slots["services"].show("Services", services_lines(view, now))


def build_screen(view: LabView, size: tuple[int, int], now: datetime, *, live: bool = True,
                 can_advance: bool = True, status: str = "", replay: ReplayStatus | None = None) -> urwid.Widget:
    """The whole screen for ``size`` (cols, rows) as a fresh box widget showing ``view`` at ``now``."""
    layout = ScreenLayout(size)
    layout.update(view, now, live=live, can_advance=can_advance, status=status, replay=replay)
    return layout.widget


def render_text(view: LabView, size: tuple[int, int], now: datetime, **kwargs: Any) -> list[str]:
    """The screen for ``size`` as text rows (what a test or a bench looks at)."""
    canvas = build_screen(view, size, now, **kwargs).render(size, focus=False)
    return [line.rstrip() for line in canvas.decoded_text]

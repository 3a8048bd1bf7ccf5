"""Formatting shared by the console's panels: markup, colours, times and fitting lines into rows.

Everything here is pure (no I/O, no clock: ``now`` is always passed in). A
line of a panel is urwid text markup (:data:`Markup`), one screen row; the
display attributes it names are the :data:`PALETTE`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

from tickets.state import TicketStatus

Markup = Any  # urwid text markup: str | tuple[attr, Markup] | list[Markup]

PALETTE: list[tuple[str, ...]] = [
    ("header", "white,bold", "dark blue"),
    ("header_dim", "light gray", "dark blue"),
    ("footer", "black", "light gray"),
    ("key", "white,bold", "dark cyan"),
    ("title", "white,bold", ""),
    ("rule", "dark cyan", ""),
    ("chapter", "yellow,bold", ""),
    ("hint", "light cyan", ""),
    ("good", "light green", ""),
    ("bad", "light red,bold", ""),
    ("warn", "yellow", ""),
    ("dim", "dark gray", ""),
    ("prompt", "white", "dark blue"),
    ("prompt_edit", "black", "light gray"),
    ("focus", "black", "yellow"),  # a line the showing chapter talks about
    ("focus_bad", "dark red,bold", "yellow"),  # ... telling a failure
    ("fact", "white,bold", ""),  # a fact of the chapter's incident stage, from the log
]

STATUS_ATTR: dict[str, str] = {
    TicketStatus.OPEN: "warn", TicketStatus.CLAIMED: "hint", TicketStatus.DIAGNOSED: "hint",
    TicketStatus.REMEDIATING: "hint", TicketStatus.VERIFIED: "good", TicketStatus.RESOLVED: "good",
    TicketStatus.ESCALATED: "bad",
}


def fmt_clock(seconds: float) -> str:
    """Elapsed time as ``mm:ss`` (``h:mm:ss`` past an hour)."""
    whole = int(max(0.0, seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def since(now: datetime, then: datetime | None) -> float | None:
    """Seconds from ``then`` to ``now``, never negative; ``None`` when ``then`` is unknown."""
    return None if then is None else max(0.0, (now - then).total_seconds())


def highlighted(line: Markup, attr: str = "focus") -> Markup:
    """``line`` highlighted: every part takes the focus colours (a failure stays red on them)."""
    if isinstance(line, str):
        return (attr, line)
    if isinstance(line, tuple):
        return highlighted(line[1], "focus_bad" if line[0] == "bad" else attr)
    return [highlighted(part, attr) for part in line]


def markup_width(parts: Sequence[tuple[str, str]]) -> int:
    """Characters of a flat markup list of ``(attr, text)`` parts."""
    return sum(len(text) for _, text in parts)


def cut_note(hidden: int, tail: bool) -> Markup:
    """The line that stands for ``hidden`` lines left out: older ones (``tail``) or further ones."""
    return ("dim", f"… {hidden} earlier" if tail else f"… +{hidden} more")


def fit_lines(lines: Sequence[Markup], room: int, tail: bool) -> list[Markup]:
    """At most ``room`` lines; a cut list says how many it left out (``tail``: keeps the newest, the last)."""
    if room <= 0:
        return []
    if len(lines) <= room:
        return list(lines)
    note = cut_note(len(lines) - (room - 1), tail)
    if room == 1:
        return [note]
    return [note, *lines[-(room - 1):]] if tail else [*lines[: room - 1], note]


def fit_items(items: Sequence[Any], room: int | None, fmt: Callable[[Any], Markup], *, tail: bool
              ) -> list[Markup]:
    """Like :func:`fit_lines` over ``map(fmt, items)``, formatting only the items that show."""
    if room is None or len(items) <= room:
        return [fmt(item) for item in items]
    if room <= 0:
        return []
    note = cut_note(len(items) - (room - 1), tail)
    if room == 1:
        return [note]
    if tail:
        return [note, *map(fmt, islice(items, len(items) - (room - 1), None))]
    return [*map(fmt, islice(items, room - 1)), note]


def flow(tokens: list[tuple[int, Markup]], width: int, sep: str = "  ") -> list[Markup]:
    """Tokens (their width, their markup) packed into lines of at most ``width``, in order."""
    rows: list[list[Markup]] = []
    used = 0
    for size, markup in tokens:
        if rows and used + len(sep) + size <= width:
            rows[-1] += [sep, markup]
            used += len(sep) + size
        else:
            rows.append([markup])
            used = size
    return [list(row) for row in rows]

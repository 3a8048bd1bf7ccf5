"""Where `oplab console --replay --from X` starts playing: a chapter, a stream sequence or a time.

``X`` is, in this order:

- a chapter number (``4``: the run's fourth chapter, as the header counts them) when it is
  between 1 and the number of chapters of the scenario, or a chapter id or title
  (``detection``, ``Detection``): everything up to and including its ``director.chapter_started``
  is folded at once, so the screen opens on that chapter;
- ``seq:N``: the stream sequence ``N`` (for a small sequence a chapter number would shadow);
- anything :func:`oplab.event_query.parse_position` reads: a stream sequence (``120``), a time
  (``2026-12-02T10:00:00Z``, or ``10:00:00`` on the run's first day), or an age (``-30s``),
  counted back from the run's last event here (not from now: a replay's "now" is its end). The
  event at that position is the first one played.

:func:`start_index` gives the index in the history of the first event to play: every event
before it is folded at once. An ``X`` that names nothing in the run raises :class:`BadStart`,
saying what the run has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from console.replay import Recorded, chapter_starts, index_at_or_after
from oplab.event_query import parse_position


class BadStart(ValueError):
    """``--from`` names no point of the run."""


def start_index(history: Sequence[Recorded], text: str) -> int:
    """Index in ``history`` (non-empty, stream order) of the first event to play from ``text``."""
    text = text.strip()
    chapters = chapter_starts(history)
    names = ", ".join(f"{c.index + 1} {c.chapter}" for _, c in chapters) or "none"
    total = max((c.total for _, c in chapters), default=0)
    if text.isdigit() and 1 <= int(text) <= total:
        for index, chapter in chapters:
            if chapter.index + 1 == int(text):
                return index + 1
        raise BadStart(f"chapter {text} never started in run {history[0].event.run} (chapters: {names})")
    for index, chapter in chapters:
        if text.casefold() in (chapter.chapter.casefold(), chapter.title.casefold()):
            return index + 1
    if match := re.fullmatch(r"seq:(\d+)", text):
        text = match.group(1)
    first, last = history[0], history[-1]
    try:
        position = parse_position(text, now=max(r.event.time for r in history), day=first.event.time)
    except ValueError:
        raise BadStart(f"{text!r} is no chapter of run {first.event.run} (chapters: {names}) and no position: "
                       "give a chapter, a sequence (120 or seq:120), a time (2026-12-02T10:00:00Z or 10:00:00) "
                       "or an age before the run's end (-30s)") from None
    index = index_at_or_after(history, seq=position.seq, at=position.at)
    if index is None:
        end = f"seq {last.seq}" if position.seq is not None else last.event.time.isoformat()
        raise BadStart(f"{text!r} is after the end of run {first.event.run} ({end})")
    return index

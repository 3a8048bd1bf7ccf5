"""The subject's own cluster and workload rows, for the console's panels.

The console does not know any subject: it asks the subject named in the
latest snapshot for its :class:`~subjects.contract.NeutralRows` (through the
registry; a subject that is not installed here, e.g. when replaying a run
recorded elsewhere, is drawn with the neutral rows) and maps each cell's tone
onto the palette.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from projections.lab_view import LabView
from subjects.contract import NeutralRows, Picture, Row
from subjects.registry import registry

log = logging.getLogger(__name__)

_NEUTRAL = NeutralRows()


@functools.cache
def subject_rows(subject: str) -> NeutralRows:
    """The rows of ``subject`` (neutral ones if it is not installed or fails to build them)."""
    found = registry().subjects.get(subject)
    if found is None:
        return _NEUTRAL
    try:
        return found.console_rows()
    except Exception:  # a subject's bug must not take the console down
        log.exception("console rows of a subject failed; drawing neutral rows", extra={"subject": subject})
        return _NEUTRAL


def rows_for(view: LabView) -> NeutralRows:
    """The rows for the subject this view shows (from its snapshots)."""
    snap = view.cluster.snapshot
    return subject_rows(snap.subject) if snap is not None else _NEUTRAL


def cluster_rows(rows: NeutralRows, picture: Picture) -> list[Row]:
    """The subject's cluster rows; the neutral ones if its code fails (said once in the log)."""
    return _guarded(rows, picture, lambda r: r.cluster(picture))


def workload_rows(rows: NeutralRows, picture: Picture, limit: int | None) -> list[Row]:
    """The subject's workload rows (at most ``limit``); the neutral ones if its code fails."""
    return _guarded(rows, picture, lambda r: r.workload(picture, limit))


_failed: set[type] = set()


def _guarded(rows: NeutralRows, picture: Picture, draw: Callable[[NeutralRows], list[Row]]) -> list[Row]:
    try:
        return draw(rows)
    except Exception:  # a subject's bug must not take the console down
        if type(rows) not in _failed:
            _failed.add(type(rows))
            log.exception("subject rows failed to draw; drawing neutral rows", extra={"rows": type(rows).__name__})
        return draw(_NEUTRAL)


def picture(view: LabView, now: datetime) -> Picture:
    cl = view.cluster
    return Picture(snapshot=cl.good_snapshot, workload=cl.workload, blind_error=cl.blind_error, now=now)


def row_markup(row: Row) -> Any:
    """urwid markup for one row: plain text for ``normal`` cells, the palette's attribute otherwise."""
    return [cell.text if cell.tone == "normal" else (cell.tone, cell.text) for cell in row]

"""Small facts in words, said once for every screen and page that shows them: a time relative to an
incident's origin (``t+0.58``), seconds (``0.58 s``: a TTD, a TTM), a value cut to a line (``…``)
and a tool call (``restart_node(node='rl-2')``).

Pure functions. The read models use them, and the console, the director's narration and oplab's
reports import them from here, so one fact cannot read two ways in two places.

Not here, on purpose: :func:`oplab.reports.document.abridge` (a report keeps line breaks and says how
many characters it left out) and the incident timeline's values-only call for a narrow line
(``restart_node(node-1)``, :mod:`projections.incident`).
"""

from __future__ import annotations

import json
from typing import Any

ABRIDGE_CHARS = 80
ARG_CHARS = 30  # a non-string argument of an abridged call


def stamp(offset_s: float) -> str:
    """``t+0.58``: seconds from an origin (``t-0.10`` for something recorded before it)."""
    return f"t{'+' if offset_s >= 0 else '-'}{abs(offset_s):.2f}"


def secs(value: float | None, missing: str = "-") -> str:
    """Seconds with two decimals, ``0.58 s`` (a TTD, a TTM); ``missing`` for None (``-`` in a table,
    a word such as ``n/a`` in a sentence)."""
    return missing if value is None else f"{value:.2f} s"


def _one_line(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def abridge(value: Any, limit: int = ABRIDGE_CHARS) -> str:
    """A one-line rendering of any JSON-ish value (a string as is, anything else as compact JSON),
    whitespace runs collapsed, at most ``limit`` characters: a longer one ends in ``…``."""
    text = " ".join(_one_line(value).split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _arg(key: str, value: Any, limit: int | None) -> str:
    if isinstance(value, str):
        return f"{key}={value!r}"
    return f"{key}={_one_line(value) if limit is None else abridge(value, ARG_CHARS)}"


def call_text(tool: str, args: dict[str, Any], limit: int | None = ABRIDGE_CHARS) -> str:
    """``restart_node(node='rl-2')``: a string argument quoted, any other as compact JSON. With
    ``limit`` (a line of a timeline), each other argument is abridged to :data:`ARG_CHARS` and the
    whole call to ``limit``; None: in full (a call a human approves, a report's transcript)."""
    text = f"{tool}({', '.join(_arg(k, v, limit) for k, v in args.items())})"
    return text if limit is None else abridge(text, limit)

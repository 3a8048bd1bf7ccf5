"""What subjects' settings parse alike: a list of named entries in one environment variable.

A subject may name its processes or endpoints in a single setting, ``name=value`` pairs
separated by commas (``a=127.0.0.1:8101,b=127.0.0.1:8102``), so that one variable carries the
whole list through the launcher, compose and the environment of every process of the run.
The setting keeps that string (:func:`checked_by` refuses a malformed one when the settings are read).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import AfterValidator


def parse_named(spec: str, *, entry: str, expected: str, valid: Callable[[str, str], bool],
                unique: bool = False) -> dict[str, str]:
    """``"name=value,…"`` as {name: value}, in order. Blanks around entries, names and values are
    dropped and empty entries skipped. An entry without ``=``, or one ``valid(name, value)`` refuses,
    is a ValueError ``bad <entry> '<item>': expected <expected>``; with ``unique`` a name given twice is
    one too (otherwise the last wins)."""
    out: dict[str, str] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not valid(name, value):
            raise ValueError(f"bad {entry} {item!r}: expected {expected}")
        if unique and name in out:
            raise ValueError(f"{entry} name {name!r} listed twice")
        out[name] = value
    return out


def checked_by(parse: Callable[[str], object]) -> AfterValidator:
    """A settings field's validator (``Annotated[str, checked_by(parse)]``): the value stays the string
    as given, so that it travels on to other processes as is, once ``parse`` accepts it (its ValueError
    refuses the settings)."""

    def check(value: str) -> str:
        parse(value)
        return value

    return AfterValidator(check)

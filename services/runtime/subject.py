"""The subject a service process serves: the one ``OPLAB_SUBJECT`` names (one subject per run).

:func:`role_of` builds the service's role of that subject, and turns what would
otherwise be a traceback — an unknown subject, a plug-in that cannot be loaded,
settings that do not validate — into an exit with the reason, which
supervisord's log and ``oplab up`` then show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from subjects.contract import Subject
from subjects.registry import UnknownSubject, load_subject

R = TypeVar("R")


def role_of(subject: str, build: Callable[[Subject], R]) -> R:
    """``build(subject)`` for the subject called ``subject``; SystemExit with the reason if impossible."""
    try:
        return build(load_subject(subject))
    except UnknownSubject as exc:
        raise SystemExit(f"{exc} (OPLAB_SUBJECT)") from None
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise SystemExit(f"subject {subject}: bad settings: {fields}") from None

"""Reading old event versions: upcasters, as in the ``eventsourcing`` library.

A payload class whose schema changed incompatibly bumps ``VERSION`` and defines,
for every older version ``n``, a static method ``upcast_v{n}_v{n+1}(data) -> data``
that turns a stored ``v{n}`` payload (a JSON object) into a ``v{n+1}`` one. The
codec applies the chain on decode, so a run recorded years ago is read as
today's events; what is stored is never rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from events.envelope import Payload

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UpcastError(ValueError):
    """A stored version this build cannot bring up to date."""


def upcasters(cls: type[Payload], version: int) -> list[Upcaster]:
    """The functions taking ``cls`` payloads from ``version`` to ``cls.VERSION``, in order.

    Raises :class:`UpcastError` for a version newer than this build's or one with
    a missing step."""
    if version > cls.VERSION:
        raise UpcastError(f"{cls.TYPE} schema version {version}, newer than this build reads ({cls.VERSION})")
    if version < 1:
        raise UpcastError(f"{cls.TYPE} schema version {version} does not exist")
    chain = []
    for n in range(version, cls.VERSION):
        step = getattr(cls, f"upcast_v{n}_v{n + 1}", None)
        if not callable(step):
            raise UpcastError(f"{cls.TYPE} schema version {n} cannot be read: no upcast_v{n}_v{n + 1}")
        chain.append(step)
    return chain


def upcast(cls: type[Payload], version: int, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a ``version`` payload of ``cls``) as a current one."""
    for step in upcasters(cls, version):
        data = step(data)
    return data

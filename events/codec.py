"""Bytes <-> :class:`Event`. Decoding is total: it never raises.

``decode`` returns either a valid :class:`Event` whose ``data`` is the payload
class registered for its ``type``, or an :class:`InvalidEvent` saying why not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from events.envelope import Event, payload_type

_RAW_PREVIEW = 200


@dataclass(frozen=True)
class InvalidEvent:
    """Bytes that are not a valid event, and the reason."""

    reason: str
    raw: bytes

    @property
    def preview(self) -> str:
        return self.raw[:_RAW_PREVIEW].decode("utf-8", errors="replace")


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def decode(raw: bytes) -> Event | InvalidEvent:
    try:
        doc = from_json(raw)
    except ValueError as exc:
        return InvalidEvent(f"not JSON: {exc}", raw)
    if not isinstance(doc, dict):
        return InvalidEvent("not a JSON object", raw)
    return _from_document(doc, raw)


def _from_document(doc: dict[str, Any], raw: bytes) -> Event | InvalidEvent:
    type_name = doc.get("type")
    if not isinstance(type_name, str):
        return InvalidEvent("missing or non-string 'type'", raw)
    cls = payload_type(type_name)
    if cls is None:
        return InvalidEvent(f"unknown event type {type_name!r}", raw)
    version = doc.get("v", 1)
    if version != cls.VERSION:
        return InvalidEvent(
            f"{type_name} schema version {version!r}, this build reads {cls.VERSION}", raw
        )
    try:
        data = cls.model_validate(doc.get("data", {}))
        return Event.model_validate({**doc, "data": data})
    except ValidationError as exc:
        return InvalidEvent(f"invalid {type_name}: {_short(exc)}", raw)


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
    return f"{where}: {first.get('msg', 'invalid')} ({exc.error_count()} error(s))"

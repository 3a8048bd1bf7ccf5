"""Bytes <-> :class:`Event`. Decoding is total: it never raises.

``decode`` returns either a valid :class:`Event` whose ``data`` is the payload
class registered for its ``type``, or an :class:`InvalidEvent` saying why not.
An event stored with an older schema version is upcast on the way in (see
:mod:`events.upcasting`) and comes out as the current version (``v`` says so);
a newer version than this build knows is invalid, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from events.envelope import Event, payload_type
from events.upcasting import UpcastError, upcast

_RAW_PREVIEW = 200
_validate_event = Event.__pydantic_validator__.validate_python


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
    if not isinstance(version, int) or isinstance(version, bool):
        return InvalidEvent(f"{type_name} schema version {version!r} is not an integer", raw)
    payload = doc.get("data", {})
    if not isinstance(payload, dict):
        return InvalidEvent(f"invalid {type_name}: data is not a JSON object", raw)
    try:
        if version != cls.VERSION:  # the common case has nothing to upcast: skip building the chain
            payload = upcast(cls, version, payload)
        # doc is ours (parsed above): fill it in place rather than copy it for every event
        # the validators themselves (what model_validate calls): decoding is the replay's hot path
        doc["data"] = cls.__pydantic_validator__.validate_python(payload)
        doc["v"] = cls.VERSION
        return _validate_event(doc)  # type: ignore[no-any-return]
    except UpcastError as exc:
        return InvalidEvent(str(exc), raw)
    except ValidationError as exc:
        return InvalidEvent(f"invalid {type_name}{_from(version, cls.VERSION)}: {_short(exc)}", raw)
    except Exception as exc:  # an upcaster choking on a hostile v1 document: still total
        return InvalidEvent(f"invalid {type_name} v{version}: cannot upcast ({type(exc).__name__}: {exc})", raw)


def _from(version: int, current: int) -> str:
    return f" (upcast from v{version})" if version != current else ""


def _short(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
    return f"{where}: {first.get('msg', 'invalid')} ({exc.error_count()} error(s))"

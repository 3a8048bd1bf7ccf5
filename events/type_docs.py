"""The event catalogue as a reader of the log needs it: each type's meaning, version and fields.

Everything comes from the payload classes themselves — the meaning is the class's docstring, the
fields its pydantic fields, the schema its JSON Schema — so what ``oplab events types`` shows cannot
drift from what is recorded. Pure: no I/O.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pydantic.fields import FieldInfo

from events.envelope import Payload, registered_types

_QUALIFIED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")


def type_matches(type_name: str, pattern: str) -> bool:
    """Whether an event type matches a pattern: a shell-style glob (``ticket.*``, ``chaos.fault_*``)
    or a bare domain (``ticket``: all of its types)."""
    return fnmatchcase(type_name, pattern) or ("." not in pattern and type_name.split(".", 1)[0] == pattern)


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One payload field: its name, its type as written in Python, and its default unless required."""

    name: str
    type: str
    required: bool
    default: str | None = None

    def as_text(self) -> str:
        return f"{self.name}: {self.type}" + ("" if self.required else f" = {self.default}")


@dataclass(frozen=True, slots=True)
class EventTypeDoc:
    """What one event type means (``meaning``: its payload class's docstring) and carries."""

    type: str
    version: int
    meaning: str
    fields: tuple[FieldDoc, ...]
    schema: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "version": self.version, "meaning": self.meaning,
                "fields": [{"name": f.name, "type": f.type, "required": f.required, "default": f.default}
                           for f in self.fields],
                "schema": self.schema}


def describe(payload: type[Payload]) -> EventTypeDoc:
    """The documentation of one payload class."""
    fields = tuple(_field_doc(name, info) for name, info in payload.model_fields.items())
    return EventTypeDoc(type=payload.TYPE, version=payload.VERSION, meaning=meaning(payload), fields=fields,
                        schema=payload.model_json_schema())


def meaning(payload: type[Payload]) -> str:
    """The class's own docstring (a base's says what the family shares, not what this type means);
    empty if it has none."""
    own = payload.__dict__.get("__doc__")
    return inspect.cleandoc(own) if isinstance(own, str) else ""


def catalogue(patterns: typing.Sequence[str] = ()) -> list[EventTypeDoc]:
    """Every registered event type matching any of ``patterns`` (all without), in type order."""
    return [describe(payload) for name, payload in sorted(registered_types().items())
            if not patterns or any(type_matches(name, p) for p in patterns)]


def _field_doc(name: str, info: FieldInfo) -> FieldDoc:
    required = info.is_required()
    return FieldDoc(name=name, type=annotation_text(info.annotation), required=required,
                    default=None if required else _default_text(info))


def _default_text(info: FieldInfo) -> str:
    """The default as code would write it: a factory that makes a value per event (a time, an id)
    is named, not called, so the catalogue does not show one arbitrary value as the default."""
    factory = info.default_factory
    if factory is None:
        return repr(info.default)
    if factory in (list, dict, set, tuple):
        return repr(factory())  # type: ignore[call-arg]
    return f"{getattr(factory, '__name__', 'factory')}()"


def annotation_text(annotation: Any) -> str:
    """A type annotation as a reader writes it: ``str | None``, ``dict[str, Any]``, ``NodeView``."""
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__name__
    if annotation is None or annotation is type(None):
        return "None"
    return _QUALIFIED.sub(r"\1", str(annotation).replace("NoneType", "None"))

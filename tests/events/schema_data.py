"""Hypothesis strategies for JSON documents that match a pydantic model's JSON schema.

Covers what the event catalogue's schemas use (checked by the test that uses it): ``$ref``/``$defs``,
``anyOf``, ``enum``, objects with ``properties``/``required``/``additionalProperties``, arrays with
``items``, the JSON scalar types and ``format: date-time``. Optional properties are sometimes left
out; extra keys are never added (the payloads forbid them), so a document is what a correct writer
of an older or newer field set could send.

Why not ``hypothesis-jsonschema``, which does this: its newest release (0.23.1) calls a private
Hypothesis helper that Hypothesis 6.156 removed (``'many' object has no attribute 'more'`` on any
object schema), so with a current Hypothesis it generates nothing. Switch once it supports it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

HANDLED = {"$ref", "$defs", "anyOf", "enum", "const", "type", "format", "properties", "required",
           "additionalProperties", "items", "title", "description", "default"}

_TEXT = st.text(max_size=12)
_DATES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                      timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "string": _TEXT,
    "integer": st.integers(min_value=-(2**53), max_value=2**53),
    "number": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "boolean": st.booleans(),
    "null": st.none(),
}
_ANY_JSON = st.recursive(st.one_of(*_SCALARS.values()),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                         max_leaves=6)


def unhandled(schema: Any) -> set[str]:
    """Keywords of ``schema`` (anywhere in it) this module does not generate for."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key not in HANDLED:
                found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    found |= unhandled(sub)
            elif key not in ("enum", "const", "default", "required", "title", "description"):
                found |= unhandled(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= unhandled(item)
    return found


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Documents matching ``schema`` (a model's ``model_json_schema()``, with its ``$defs``)."""
    return _strategy(schema, schema.get("$defs", {}))


def _strategy(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: _strategy(defs[name], defs))
    if "anyOf" in schema:
        return st.one_of(*(_strategy(option, defs) for option in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, defs)
    if kind == "array":
        items = _strategy(schema["items"], defs) if "items" in schema else _ANY_JSON
        return st.lists(items, max_size=3)
    if kind == "string" and schema.get("format") == "date-time":
        return _DATES
    if isinstance(kind, str):
        return _SCALARS[kind]
    return _ANY_JSON  # no type: any JSON value


def _object(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties")
    if properties is None:  # a mapping: dict[str, X]
        extra = schema.get("additionalProperties", True)
        values = _strategy(extra, defs) if isinstance(extra, dict) else _ANY_JSON
        return st.dictionaries(_TEXT, values, max_size=3)
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {name: _strategy(sub, defs) for name, sub in properties.items() if name in required},
        optional={name: _strategy(sub, defs) for name, sub in properties.items() if name not in required})

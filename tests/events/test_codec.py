"""The codec: every catalogued type round-trips; anything else is an InvalidEvent."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from events import Event, InvalidEvent, decode, encode, new_event
from events.envelope import registered_types
from tests.events.schema_data import from_schema, unhandled


def _example(model: type[BaseModel]) -> BaseModel:
    """A minimal valid instance built from the model's field types."""
    from datetime import UTC, datetime
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if not field.is_required():
            continue
        ann = str(field.annotation)
        if "datetime" in ann:
            values[name] = datetime(2026, 11, 25, tzinfo=UTC)
        elif "Literal" in ann:
            values[name] = field.annotation.__args__[0]  # type: ignore[union-attr]
        elif ann.startswith("list"):
            values[name] = []
        elif "int" in ann and "str" not in ann:
            values[name] = 3
        elif "float" in ann:
            values[name] = 1.5
        elif "bool" in ann:
            values[name] = True
        else:
            values[name] = "x"
    return model.model_validate(values)


def test_every_event_type_round_trips() -> None:
    types = registered_types()
    assert len(types) >= 35
    for type_name, cls in types.items():
        event = new_event(_example(cls), run="r1", source="test", correlation="c",
                          causation="p")
        decoded = decode(encode(event))
        assert isinstance(decoded, Event), (type_name, decoded)
        assert decoded == event
        assert type(decoded.data) is cls


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = decode(raw)
    assert isinstance(result, Event | InvalidEvent)


def test_reasons_say_what_is_wrong() -> None:
    assert "not JSON" in decode(b"\xff").reason  # type: ignore[union-attr]
    assert "unknown event type" in decode(b'{"type":"x.y"}').reason  # type: ignore[union-attr]
    bad = b'{"type":"run.started","v":1,"run":"r","source":"s","data":{"scenario":1}}'
    assert "invalid run.started" in decode(bad).reason  # type: ignore[union-attr]
    newer = b'{"type":"run.started","v":9,"run":"r","source":"s","data":{}}'
    assert "schema version" in decode(newer).reason  # type: ignore[union-attr]


def _envelopes() -> st.SearchStrategy[tuple[type[BaseModel], str, dict[str, Any]]]:
    """Envelopes whose ``data`` is generated from the payload model's own JSON schema: bytes that are
    JSON and nearly valid, where the codec's validation really has to work."""

    def of(type_name: str, cls: type[BaseModel]) -> st.SearchStrategy[tuple[type[BaseModel], str, dict[str, Any]]]:
        return from_schema(cls.model_json_schema()).map(lambda data: (cls, type_name, data))

    return st.one_of(*(of(name, cls) for name, cls in sorted(registered_types().items())))


def test_the_generator_knows_every_keyword_the_catalogues_schemas_use() -> None:
    assert {name: unhandled(cls.model_json_schema()) for name, cls in registered_types().items()
            if unhandled(cls.model_json_schema())} == {}


@settings(max_examples=300)
@given(_envelopes())
def test_payloads_generated_from_the_schemas_decode_to_their_type_or_say_why_not(
        case: tuple[type[BaseModel], str, dict[str, Any]]) -> None:
    import json

    cls, type_name, data = case
    raw = json.dumps({"type": type_name, "v": cls.VERSION, "run": "r1", "source": "fuzz",  # type: ignore[attr-defined]
                      "data": data}).encode()
    result = decode(raw)
    if isinstance(result, InvalidEvent):  # what the schema cannot say (a validator's rule): named, never raised
        assert type_name in result.reason, result.reason
        return
    assert type(result.data) is cls
    assert decode(encode(result)) == result  # and what decodes, round-trips

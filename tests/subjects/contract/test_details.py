"""A subject's details are read once per event, and a bad field never hides the good ones."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel

from events import ObsSnapshot
from events.structured_logging import fields
from subjects.contract import DetailsReader


class Counter(BaseModel):
    key: str
    count: int


class Details(BaseModel):
    counters: list[Counter] = []
    store_ok: bool | None = None


def snap(details: dict) -> ObsSnapshot:  # type: ignore[type-arg]
    return ObsSnapshot(subject="s", ok=True, details=details)


def test_details_validate_into_the_subjects_model_once_per_event() -> None:
    read = DetailsReader(Details)
    s = snap({"counters": [{"key": "a", "count": 1}], "store_ok": True})
    first = read(s)
    assert first.counters[0].key == "a" and first.store_ok is True
    assert read(s) is first  # cached: invariants read the same snapshot on every tick
    assert read(snap({})) == Details()


def test_a_bad_field_reads_as_its_default_and_the_rest_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    read = DetailsReader(Details)
    with caplog.at_level(logging.WARNING):
        got = read(snap({"counters": [{"key": "a", "count": 1}, {"key": "b"}], "store_ok": False}))
        read(snap({"counters": "nonsense", "store_ok": True}))
    assert got.counters == [] and got.store_ok is False  # the store's health survives a bad counter
    assert [(r.getMessage(), fields(r)) for r in caplog.records] == [
        ("ignoring an invalid field in details (read as its default)",
         {"model": "Details", "field": "counters"})]  # said once

"""The event catalogue as `oplab events types` shows it: every type documented, from its own class."""

from __future__ import annotations

import pytest

from events import ObsSnapshot, RunStarted
from events.envelope import registered_types
from events.type_docs import annotation_text, catalogue, describe, meaning, type_matches


@pytest.mark.parametrize("type_name", sorted(registered_types()))
def test_every_event_type_says_what_it_means_in_its_own_docstring(type_name: str) -> None:
    payload = registered_types()[type_name]
    assert meaning(payload), f"{payload.__name__} ({type_name}) has no docstring: say who records it and when"


def test_the_meaning_is_what_the_json_schema_describes() -> None:
    doc = describe(RunStarted)
    assert doc.schema.get("description") == doc.meaning


@pytest.mark.parametrize(("type_name", "pattern", "matches"), [
    ("ticket.opened", "ticket.*", True),
    ("ticket.opened", "ticket", True),
    ("ticket.opened", "tick", False),
    ("chaos.fault_injected", "chaos.fault_*", True),
    ("chaos.fault_injected", "chaos.fault_reverted", False),
    ("inv.violated", "*.violated", True),
])
def test_a_pattern_is_a_glob_or_a_bare_domain(type_name: str, pattern: str, matches: bool) -> None:
    assert type_matches(type_name, pattern) is matches


def test_the_catalogue_selects_by_pattern_in_type_order() -> None:
    found = [doc.type for doc in catalogue(["ticket", "run.*"])]
    assert found == sorted(found)
    assert {"run.started", "run.finished", "ticket.opened", "ticket.resolved"} <= set(found)
    assert all(t.startswith(("ticket.", "run.")) for t in found)
    assert catalogue(["no-such-domain"]) == []


def test_fields_read_as_python_declares_them() -> None:
    fields = {f.name: f for f in describe(RunStarted).fields}
    assert fields["scenario"].required and fields["scenario"].type == "str"
    assert not fields["fault"].required and fields["fault"].as_text() == "fault: str | None = None"
    assert fields["config"].type == "dict[str, Any]"


def test_a_default_made_per_event_is_named_not_shown_as_one_value() -> None:
    fields = {f.name: f for f in describe(ObsSnapshot).fields}
    assert fields["observed_at"].default == "utcnow()"
    assert fields["nodes"].default == "[]" and fields["nodes"].type == "list[NodeView]"


def test_annotations_drop_module_paths() -> None:
    assert annotation_text(int) == "int"
    assert annotation_text(None) == "None"
    assert annotation_text(dict[str, list[RunStarted]]) == "dict[str, list[RunStarted]]"

"""A subject declares its catalogue's classes and keeps its scenarios in ``scenarios/`` beside its
module: the contract describes the one and finds the other, the same way for every subject."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from subjects.contract import Subject
from subjects.ratelimiter.faults import FAULT_TYPES
from subjects.ratelimiter.invariants import INVARIANT_TYPES
from subjects.ratelimiter.subject import RateLimiterSubject
from subjects.ratelimiter.tools import TOOL_TYPES

SUBJECT_MODULE = '''
from subjects.contract import Roles, Subject

class Lamp(Subject):
    name = "lamp"
    description = "a lamp"
    roles = Roles(observer=object, toolbox=object, fault_kit=object, workload=object, provisioner=object)
'''


@pytest.fixture
def lamp_package(tmp_path: Path) -> Iterator[tuple[type[Subject], Path]]:
    """A subject defined in a module of its own folder, as a plug-in package would hold it."""
    package = tmp_path / "lamp_subject"
    package.mkdir()
    (package / "subject.py").write_text(SUBJECT_MODULE)
    spec = importlib.util.spec_from_file_location("lamp_subject_under_test", package / "subject.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module.Lamp, package
    finally:
        del sys.modules[spec.name]


def test_the_catalogue_describes_the_declared_classes() -> None:
    catalogue = RateLimiterSubject().catalogue()
    assert catalogue.fault_kinds() == [f.kind for f in FAULT_TYPES]
    assert [i.name for i in catalogue.invariants] == [i.name for i in INVARIANT_TYPES]
    assert [t.name for t in catalogue.tools] == [t.name for t in TOOL_TYPES]


def test_scenarios_are_the_yaml_files_beside_the_module_the_subjects_own_first(
        lamp_package: tuple[type[Subject], Path]) -> None:
    lamp, package = lamp_package
    assert lamp().scenarios() == {} and lamp().default_scenario() is None  # no scenarios/ folder: none
    folder = package / "scenarios"
    folder.mkdir()
    for name in ("dim.yaml", "lamp.yaml", "blink.yaml", "notes.txt"):
        (folder / name).write_text("chapters: []\n")

    scenarios = lamp().scenarios()
    assert list(scenarios) == ["lamp", "blink", "dim"]
    assert scenarios["blink"] == folder / "blink.yaml"
    assert lamp().default_scenario() == "lamp"
    assert lamp().catalogue().faults == []  # nothing declared: an empty catalogue, not an error

"""Every subject in the repository keeps the contract: its roles agree with its catalogue, its playbooks
call its own tools for its own invariants, its scenarios load, and nothing the agent sees names a fault."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.director.scenario import load_scenario
from subjects.contract import Subject
from subjects.registry import load_subject

TOY = Path(__file__).resolve().parents[1] / "plugins" / "toy"


@pytest.fixture(scope="module")
def toy() -> Iterator[Subject]:
    sys.path.insert(0, str(TOY))
    try:
        from toy_subject.subject import ToySubject

        yield ToySubject()
    finally:
        sys.path.remove(str(TOY))


@pytest.fixture(params=["ratelimiter", "tikv", "toy"])
def subject(request: pytest.FixtureRequest, toy: Subject) -> Subject:
    return toy if request.param == "toy" else load_subject(request.param)


async def test_the_roles_agree_with_the_catalogue(subject: Subject) -> None:
    catalogue = subject.catalogue()
    observer, toolbox, kit = subject.observer(), subject.toolbox(), subject.fault_kit()  # no I/O to build
    try:
        assert [i.name for i in observer.invariants()] == [i.name for i in catalogue.invariants]
        assert "observer_blind" in [i.name for i in catalogue.invariants]
        assert [(t.name, t.mutating) for t in toolbox.tools()] == [(t.name, t.mutating) for t in catalogue.tools]
        assert [(f.kind, f.default_ttl_s) for f in kit.faults()] == [(f.kind, f.default_ttl_s)
                                                                     for f in catalogue.faults]
        assert kit.targets()
    finally:
        await observer.close()
        await toolbox.close()
        await kit.close()


async def test_playbooks_call_the_toolbox_for_the_subjects_own_invariants(subject: Subject) -> None:
    toolbox = subject.toolbox()
    try:
        invariants = {i.name for i in subject.catalogue().invariants}
        tools = {t.name: t for t in toolbox.tools()}
        assert {p.invariant for p in toolbox.playbooks()} <= invariants
        for playbook in toolbox.playbooks():
            evidence = {"entity": "x"}
            assert all(not tools[c.tool].mutating for c in playbook.diagnose(evidence))
            assert isinstance(playbook.hypothesis(evidence, {}), str)
            assert all(c.tool in tools and tools[c.tool].mutating for c in playbook.remedy(evidence, {}))
    finally:
        await toolbox.close()


def test_its_scenarios_load_and_play_its_faults(subject: Subject) -> None:
    assert subject.scenarios(), f"{subject.name} ships no scenario"
    for name in subject.scenarios():
        scenario = load_scenario(name, subject)
        assert scenario.subject == subject.name
        assert scenario.default_fault in subject.catalogue().fault_kinds()


async def test_nothing_the_agent_sees_names_a_fault(subject: Subject) -> None:
    toolbox = subject.toolbox()
    try:
        kinds = subject.catalogue().fault_kinds()
        seen = [toolbox.description, *(i.name + " " + i.description for i in subject.catalogue().invariants),
                *(t.name + " " + t.description for t in toolbox.tools())]
        assert [(k, text) for k in kinds for text in seen if k in text] == []
    finally:
        await toolbox.close()

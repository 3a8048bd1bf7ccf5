"""Scenarios are data, and belong to a subject: the rate limiter's validates; bad files, scenarios about
another subject and faults the subject does not have fail with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from events import TicketResolved, new_event
from services.director.scenario import ScenarioError, load_scenario
from subjects.registry import load_subject

RATELIMITER = load_subject("ratelimiter")
SCENARIO = RATELIMITER.scenarios()["ratelimiter"]


def test_the_ratelimiter_scenario_has_the_story_in_order() -> None:
    scenario = load_scenario("ratelimiter", RATELIMITER)
    assert [c.id for c in scenario.chapters_for("node_kill")] == [
        "welcome", "baseline", "inject", "detection", "remediation", "verification", "summary"]
    assert set(scenario.faults) >= {"node_kill", "counter_drift"}
    inject = scenario.chapters[2]
    assert inject.countdown_s > 0 and inject.on_enter[0].action == "inject"


def test_predicates_match_type_and_fields() -> None:
    when = load_scenario("ratelimiter", RATELIMITER).chapters[5].advance.when
    assert when is not None
    resolved = new_event(TicketResolved(ticket_id="tk-1", by="agent"), run="r", source="t")
    assert when.matches(resolved)
    assert not when.model_copy(update={"where": {"by": "self-healed"}}).matches(resolved)


def test_the_subjects_first_scenario_is_the_default() -> None:
    assert load_scenario(None, RATELIMITER).name == "ratelimiter"


def test_unknown_scenario_names_the_subjects_own() -> None:
    with pytest.raises(ScenarioError, match="it has: ratelimiter"):
        load_scenario("nope", RATELIMITER)


def test_a_scenario_about_another_subject_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(SCENARIO.read_text().replace("subject: ratelimiter", "subject: tikv"))
    with pytest.raises(ScenarioError, match="about subject 'tikv', not 'ratelimiter'"):
        load_scenario(str(path), RATELIMITER)


def test_a_fault_the_subject_does_not_have_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bogus.yaml"
    path.write_text(SCENARIO.read_text().replace("faults:\n", "faults:\n  store_kill: {title: nope}\n"))
    with pytest.raises(ScenarioError, match="store_kill are not in subject ratelimiter's catalogue"):
        load_scenario(str(path), RATELIMITER)


def test_the_default_fault_must_be_played(tmp_path: Path) -> None:
    path = tmp_path / "default.yaml"
    path.write_text(SCENARIO.read_text().replace("default_fault: node_kill", "default_fault: redis_crash"))
    with pytest.raises(ScenarioError, match="default_fault 'redis_crash' is not one of its faults"):
        load_scenario(str(path), RATELIMITER)


@pytest.mark.parametrize("text, message", [
    ("name: [", "not valid YAML"),
    ("name: x\nsubject: y\ndefault_fault: z\nchapters: []\n", "chapters"),
    ("name: x\nsubject: y\ndefault_fault: z\nchapters:\n  - {id: a, title: t, narration: n, "
     "on_enter: [{action: explode}]}\n", "on_enter"),
])
def test_invalid_scenarios_fail_with_where(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(str(path), RATELIMITER)


def test_a_control_fault_plays_the_watch_chapter_instead_of_the_incident() -> None:
    scenario = load_scenario("ratelimiter", RATELIMITER)
    assert scenario.faults["hot_key_burst"].control
    ids = [c.id for c in scenario.chapters_for("hot_key_burst")]
    assert ids == ["welcome", "baseline", "inject", "watch", "summary"]


def test_hints_say_what_ends_a_chapter_in_each_mode() -> None:
    detection = load_scenario("ratelimiter", RATELIMITER).chapters[3]
    assert detection.hint("interactive") == "space: next"  # the presenter's key only
    assert detection.hint("auto") == "waits for ticket.opened; at most 20s; space: skip"


def test_the_incident_chapters_say_which_stage_they_tell() -> None:
    scenario = load_scenario("ratelimiter", RATELIMITER)
    about = {c.id: c.about for c in scenario.chapters}
    assert about["inject"] == ["injection"] and about["detection"] == ["detection"]
    assert about["remediation"] == ["remediation"] and about["verification"] == ["verification"]
    assert about["welcome"] == [] and about["summary"] == []


def test_a_chapter_about_an_unknown_stage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "about.yaml"
    path.write_text(SCENARIO.read_text().replace("about: [detection]", "about: [applause]"))
    with pytest.raises(ScenarioError, match="about"):
        load_scenario(str(path), RATELIMITER)

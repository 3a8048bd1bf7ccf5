"""A campaign's plan: validated before anything starts, deterministic, with seeds derived from the campaign's."""

from __future__ import annotations

from pathlib import Path

import pytest

from oplab.campaign.plan import (
    PlanError,
    load_campaign_file,
    parse_variant,
    plan_campaign,
    trial_seed,
)

RULES = parse_variant("rules")


def test_the_plan_is_the_matrix_repeat_by_repeat_with_derived_seeds() -> None:
    campaign = plan_campaign(subject="ratelimiter", faults=["node_kill", "hot_key_burst"],
                             variants=[RULES, parse_variant("claude:claude-haiku-4-5")], repeats=2, seed=7)
    order = [(t.repeat, t.fault, t.variant) for t in campaign.trials]
    assert order == [(r, f, v) for r in (0, 1) for f in ("node_kill", "hot_key_burst")
                     for v in ("rules", "claude:claude-haiku-4-5")]
    assert [t.trial for t in campaign.trials] == list(range(1, 9))
    assert [t.seed for t in campaign.trials] == [trial_seed(7, n) for n in range(1, 9)]
    assert len({t.seed for t in campaign.trials}) == 8
    assert [t.control for t in campaign.trials if t.fault == "hot_key_burst"] == [True] * 4
    assert campaign.controls == ["hot_key_burst"]


def test_the_same_campaign_plans_the_same_trials_and_another_seed_other_seeds() -> None:
    def plan(seed: int) -> list[dict]:  # type: ignore[type-arg]
        return [t.model_dump() for t in plan_campaign(subject="ratelimiter", faults=["node_kill"], variants=[RULES],
                                                      repeats=3, seed=seed).trials]

    assert plan(1) == plan(1)
    assert [t["seed"] for t in plan(1)] != [t["seed"] for t in plan(2)]


def test_noise_goes_with_every_incident_trial_and_names_the_scenarios_control_fault() -> None:
    campaign = plan_campaign(subject="ratelimiter", faults=["node_kill", "hot_key_burst"], variants=[RULES],
                             repeats=1, seed=1, noise=True)
    assert campaign.noise_fault == "hot_key_burst"
    assert [(t.fault, t.noise) for t in campaign.trials] == [("node_kill", True), ("hot_key_burst", False)]


def test_no_faults_means_every_fault_the_scenario_plays() -> None:
    campaign = plan_campaign(subject="ratelimiter", faults=None, variants=[RULES], repeats=1, seed=1)
    assert "node_kill" in campaign.faults and "hot_key_burst" in campaign.faults


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"faults": ["node_kill", "nope"]}, r"unknown fault\(s\) nope .*choose from: node_kill"),
    ({"subject": "nope"}, "unknown subject 'nope'"),
    ({"repeats": 0}, "repeats must be at least 1"),
    ({"variants": []}, "at least one operator variant"),
    ({"variants": [RULES, RULES]}, "named alike"),
    ({"faults": ["node_kill", "node_kill"]}, "listed twice"),
])
def test_bad_campaigns_are_refused_with_the_choices(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    args = {"subject": "ratelimiter", "faults": ["node_kill"], "variants": [RULES], "repeats": 1, "seed": 1} | kwargs
    with pytest.raises(PlanError, match=message):
        plan_campaign(**args)


@pytest.mark.parametrize("form", ["claud:x", "replay", "rules:x", "", "human"])
def test_an_unknown_variant_form_names_the_forms(form: str) -> None:
    with pytest.raises(PlanError, match=r"rules, claude:<model>, replay:<run>"):
        parse_variant(form)


def test_a_variant_gives_its_agent_its_policy_model_and_settings() -> None:
    variant = parse_variant("claude:claude-sonnet-4-6", name="terse", settings={"max_steps": 4, "approval": "auto"})
    assert variant.env() == {"OPLAB_AGENT_POLICY": "claude", "OPLAB_AGENT_MODEL": "claude-sonnet-4-6",
                             "OPLAB_AGENT_MAX_STEPS": "4", "OPLAB_APPROVAL": "auto"}
    assert parse_variant("replay:r1").env() == {"OPLAB_AGENT_POLICY": "replay", "OPLAB_AGENT_REPLAY_RUN": "r1"}
    prompted = parse_variant("claude:claude-sonnet-4-6", name="careful", settings={"prompt": "Never restart twice."})
    assert prompted.env()["OPLAB_AGENT_PROMPT"] == "Never restart twice."  # prompts compared like any setting


def test_variant_settings_are_checked_against_the_agents_settings() -> None:
    with pytest.raises(PlanError, match=r"unknown agent setting.*bogus.*choose from:.*max_steps"):
        parse_variant("rules", settings={"bogus": 1})
    with pytest.raises(PlanError, match="max_steps"):
        parse_variant("rules", settings={"max_steps": 0})
    with pytest.raises(PlanError, match=r"unknown agent setting.*api_key"):
        parse_variant("claude:x", settings={"api_key": "sk-no"})


def test_a_yaml_campaign_file_gives_named_variants_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("faults: [node_kill]\nrepeats: 2\nseed: 3\nvariants:\n  - rules\n"
                    "  - {name: frugal, policy: 'claude:claude-haiku-4-5', settings: {max_cost_usd: 0.05}}\n")
    doc = load_campaign_file(path)
    variants = doc.parsed_variants()
    assert doc.faults == ["node_kill"] and doc.repeats == 2 and doc.seed == 3
    assert variants is not None and [v.name for v in variants] == ["rules", "frugal"]
    assert variants[1].env()["OPLAB_AGENT_MAX_COST_USD"] == "0.05"


def test_a_toml_campaign_file_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('faults = ["node_kill"]\nrepeats = 2\n[[variants]]\npolicy = "rules"\nname = "r"\n')
    doc = load_campaign_file(path)
    assert doc.faults == ["node_kill"] and [v.name for v in doc.parsed_variants() or []] == ["r"]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("c.yaml", "repeats: 0\n", "repeats"),
    ("c.yaml", "colour: red\n", "colour: Extra inputs"),
    ("c.yaml", "faults: [\n", "not valid YAML"),
    ("c.toml", "faults = \n", "not valid TOML"),
    ("c.json", "{}", r"give a \.yaml, \.yml or \.toml file"),
    ("c.yaml", "variants: [foo]\n", "unknown operator variant 'foo'"),
])
def test_a_bad_campaign_file_says_what_is_wrong(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PlanError, match=message):
        load_campaign_file(path).parsed_variants()


def test_a_missing_campaign_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read campaign file"):
        load_campaign_file(tmp_path / "none.yaml")

"""A campaign as asked for - flags or a small YAML/TOML file - validated before anything starts, and
its trials in a deterministic order.

Operator variants are written ``rules``, ``claude:<model>`` (``claude`` alone: the agent's default
model) or ``replay:<run>``; in a file each may carry a ``name`` and ``settings`` overrides of the
agent (fields of :class:`services.agent.settings.AgentSettings`: ``max_steps``, ``max_cost_usd``,
``approval``...), which its trials' agent gets as ``OPLAB_AGENT_<FIELD>`` (``OPLAB_APPROVAL``).

The plan runs repeat by repeat (every cell once, then every cell again...), so a campaign cut off
half-way still has every cell sampled; inside a repeat, fault by fault, variant by variant. Each
trial's seed is derived from the campaign's seed and the trial's number alone (SHA-256), so the
same campaign always plans the same trials with the same seeds.

Any mistake - an unknown subject, fault, policy form or setting, repeats < 1, ``--noise`` on a
subject whose scenario has no control fault - is a :class:`PlanError` naming the choices.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from projections.scoreboard import TrialPlace
from services.director.scenario import Scenario, ScenarioError, load_scenario
from subjects.contract import Subject
from subjects.registry import UnknownSubject, load_subject

POLICY_FORMS = "rules, claude:<model>, replay:<run>"
_RESERVED = {"policy", "model", "replay_run", "replay_ticket", "api_key", "base_url"}
"""Agent settings a variant's policy sets (or that are secrets): not overridable per variant."""


class PlanError(ValueError):
    """The campaign asked for is not valid; the message names the choices."""


class Variant(BaseModel):
    """One operator variant: a policy (and its model or recorded run) and agent settings overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    policy: Literal["rules", "claude", "replay"]
    model: str | None = None
    replay_run: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """What this variant's agent gets in its environment."""
        env = {"OPLAB_AGENT_POLICY": self.policy}
        if self.model:
            env["OPLAB_AGENT_MODEL"] = self.model
        if self.replay_run:
            env["OPLAB_AGENT_REPLAY_RUN"] = self.replay_run
        for key, value in self.settings.items():
            name = "OPLAB_APPROVAL" if key == "approval" else f"OPLAB_AGENT_{key.upper()}"
            env[name] = value if isinstance(value, str) else json.dumps(value)
        return env

    def described(self) -> dict[str, Any]:
        """The variant as ``campaign.started`` records it."""
        return self.model_dump(mode="json")


def parse_variant(form: str, *, name: str | None = None, settings: dict[str, Any] | None = None) -> Variant:
    """``rules`` | ``claude[:<model>]`` | ``replay:<run>``, named ``name`` (default: the form)."""
    form = form.strip()
    policy, _, arg = form.partition(":")
    overrides = _checked_settings(form, settings or {})
    if policy == "rules" and not arg:
        return Variant(name=name or form, policy="rules", settings=overrides)
    if policy == "claude":
        return Variant(name=name or form, policy="claude", model=arg or None, settings=overrides)
    if policy == "replay" and arg:
        return Variant(name=name or form, policy="replay", replay_run=arg, settings=overrides)
    raise PlanError(f"unknown operator variant {form!r}; write one of: {POLICY_FORMS}")


def _checked_settings(form: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` if every key is an agent setting a variant may override and every value fits."""
    from services.agent.settings import AgentSettings

    allowed = sorted(set(AgentSettings.model_fields) - _RESERVED)
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise PlanError(f"variant {form}: unknown agent setting(s) {', '.join(unknown)}; "
                        f"choose from: {', '.join(allowed)}")
    try:
        AgentSettings(**settings)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PlanError(f"variant {form}: {problems}") from None
    return dict(settings)


class VariantEntry(BaseModel):
    """A variant in a campaign file: ``policy`` in the flag's form, an optional name and overrides."""

    model_config = ConfigDict(extra="forbid")

    policy: str
    name: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class CampaignFile(BaseModel):
    """A campaign file (YAML or TOML); every field may also come from the flags, which win."""

    model_config = ConfigDict(extra="forbid")

    subject: str | None = None
    faults: list[str] | None = None
    variants: list[str | VariantEntry] | None = None
    repeats: int | None = Field(default=None, ge=1)
    seed: int | None = None
    noise: bool | None = None
    parallel: int | None = Field(default=None, ge=1)

    @field_validator("faults")
    @classmethod
    def _some_faults(cls, faults: list[str] | None) -> list[str] | None:
        if faults is not None and not faults:
            raise ValueError("give at least one fault")
        return faults

    def parsed_variants(self) -> list[Variant] | None:
        if self.variants is None:
            return None
        return [parse_variant(v) if isinstance(v, str) else parse_variant(v.policy, name=v.name, settings=v.settings)
                for v in self.variants]


def load_campaign_file(path: Path) -> CampaignFile:
    """The campaign file at ``path`` (``.yaml``/``.yml`` or ``.toml``), validated."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlanError(f"cannot read campaign file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".toml":
            doc: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            doc = yaml.safe_load(text)
        else:
            raise PlanError(f"campaign file {path}: give a .yaml, .yml or .toml file")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise PlanError(f"campaign file {path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    try:
        return CampaignFile.model_validate(doc or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise PlanError(f"campaign file {path}: {problems}") from None


class PlannedTrial(TrialPlace):
    """One trial of the plan: where it sits in the matrix, its derived seed, and what it plays."""

    control: bool = False
    noise: bool = False


class Campaign(BaseModel):
    """A validated campaign: the subject, its faults (and which are controls), the variants, the plan."""

    model_config = ConfigDict(frozen=True)

    subject: str
    faults: list[str]
    variants: list[Variant]
    repeats: int
    seed: int
    noise: bool
    noise_fault: str | None
    parallel: int
    controls: list[str]
    trials: list[PlannedTrial]

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)


def trial_seed(campaign_seed: int, trial: int) -> int:
    """A trial's seed: a function of the campaign's seed and the trial's number alone."""
    digest = hashlib.sha256(f"{campaign_seed}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def plan_campaign(*, subject: str, faults: list[str] | None, variants: list[Variant], repeats: int, seed: int,
                  noise: bool = False, parallel: int = 1, scenario: str | None = None) -> Campaign:
    """Check the campaign against the subject's catalogue and scenario and plan its trials.
    ``faults`` None: every fault the scenario plays (its controls included)."""
    the_subject, the_scenario = _subject_and_scenario(subject, scenario)
    kinds = the_subject.catalogue().fault_kinds()
    faults = list(faults) if faults else list(the_scenario.faults)
    unknown = [f for f in faults if f not in kinds or f not in the_scenario.faults]
    if unknown:
        raise PlanError(f"unknown fault(s) {', '.join(unknown)} for subject {the_subject.name}; "
                        f"choose from: {', '.join(f for f in kinds if f in the_scenario.faults)}")
    if len(set(faults)) != len(faults):
        raise PlanError("a fault is listed twice")
    if not variants:
        raise PlanError(f"give at least one operator variant ({POLICY_FORMS})")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise PlanError(f"two variants are named alike ({', '.join(names)}): name them in a campaign file")
    if repeats < 1:
        raise PlanError(f"repeats must be at least 1 (got {repeats})")
    if parallel < 1:
        raise PlanError(f"--parallel must be at least 1 (got {parallel})")
    controls = [f for f, spec in the_scenario.faults.items() if spec.control]
    noise_fault = controls[0] if controls else None
    if noise and noise_fault is None:
        raise PlanError(f"--noise needs a control fault in subject {the_subject.name}'s scenario; it has none")
    trials: list[PlannedTrial] = []
    for repeat in range(repeats):
        for fault in faults:
            for variant in variants:
                number = len(trials) + 1
                control = fault in controls
                trials.append(PlannedTrial(trial=number, fault=fault, variant=variant.name, repeat=repeat,
                                           seed=trial_seed(seed, number), control=control,
                                           noise=noise and not control))
    return Campaign(subject=the_subject.name, faults=faults, variants=variants, repeats=repeats, seed=seed,
                    noise=noise, noise_fault=noise_fault if noise else None, parallel=parallel,
                    controls=[f for f in faults if f in controls], trials=trials)


def _subject_and_scenario(name: str, scenario: str | None) -> tuple[Subject, Scenario]:
    try:
        subject = load_subject(name)
    except UnknownSubject as exc:
        raise PlanError(str(exc)) from None
    try:
        return subject, load_scenario(scenario, subject)
    except ScenarioError as exc:
        raise PlanError(str(exc)) from None


def parse_list(text: str | None) -> list[str] | None:
    """``a,b , c`` -> ``[a, b, c]`` (None for no text)."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


"""Scenarios are data: a YAML file validated by these models.

A scenario is a list of chapters. Entering a chapter runs its ``on_enter``
actions (after an optional ``countdown_s``); how the chapter ends depends on
the director's mode:

- interactive (a presenter on stage): only the presenter's key press
  (``cmd.director.next``) advances. Conditions and timeouts never do: the
  presenter sets the pace, and the console shows the chapter and its hint.
- auto (headless, CI, benchmarks): the chapter advances when its ``advance``
  condition holds or its timeout expires, whichever comes first; a key press
  also advances when ``key`` is true (the default).

The ``advance`` fields:

- ``when``: an event predicate - an event ``type`` (or several) and optional
  equality tests on payload fields (``where``). With ``after_fault: true`` any
  matching event stored after this run's first ``chaos.fault_injected``
  counts, even one from before the chapter began (a fast agent may resolve
  the ticket while an earlier chapter is still showing); otherwise any
  matching event stored after the previous chapter finished counts. With
  ``run_ticket: true`` (implies ``after_fault``) only events of *the run's
  ticket* count: the first ticket opened after the fault, the one the run's
  summary scores - not a second ticket a symptom of the same fault opened
  and that healed on its own.
- ``timeout_s``: auto mode only - advance anyway after this long.
- ``key``: auto mode only - whether a key press may skip ahead.

Narration may use ``{fault}``, ``{fault_title}`` and ``{summary}`` placeholders. A chapter's
``about`` names the incident stages it tells; the director carries them in
``director.chapter_started.about`` and the console shows their facts as they
happen (an interactive presenter may reach Detection long after the ticket
opened: the facts say when it did, not that it will).

Scenarios belong to subjects: a subject package ships its scenario files
(:meth:`~subjects.contract.Subject.scenarios`), a scenario names its
``subject``, and every fault it plays must be in that subject's catalogue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from events import Event
from projections.incident import Stage
from subjects.contract import Subject


class ScenarioError(ValueError):
    """The scenario file is missing or invalid; the message says where."""


class Inject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["inject"]
    kind: str = "{fault}"
    target: str | None = None
    ttl_s: float = Field(default=120.0, gt=0)


class RevertAll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["revert_all"]


class Finish(BaseModel):
    """Record ``run.finished`` with the run's summary."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["finish"]


Action = Inject | RevertAll | Finish


class EventPredicate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str | list[str]
    where: dict[str, Any] = {}
    after_fault: bool = False
    run_ticket: bool = False

    def types(self) -> list[str]:
        return [self.type] if isinstance(self.type, str) else self.type

    def matches(self, event: Event) -> bool:
        if event.type not in self.types():
            return False
        data = event.data.model_dump()
        return all(data.get(k) == v for k, v in self.where.items())


class Advance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: EventPredicate | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    key: bool = True


class FaultSpec(BaseModel):
    """A fault the scenario can play. A *control* fault breaks nothing (e.g. a
    legitimate burst): the right outcome is that no operator acts."""

    model_config = ConfigDict(extra="forbid")
    title: str
    control: bool = False


class Chapter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    narration: str
    plays_for: Literal["all", "incident", "control"] = "all"
    about: list[Stage] = []
    """The incident stages this chapter tells (``injection``, ``detection``, ``remediation``,
    ``verification``): the console fills its narration with their facts from the log, whenever
    they happen, and highlights the lines they are about (see :mod:`projections.incident`)."""
    countdown_s: float = Field(default=0.0, ge=0)
    on_enter: list[Action] = []
    advance: Advance = Advance()

    def hint(self, mode: str) -> str:
        """What ends this chapter, in words, for the console (``director.chapter_started.advance``)."""
        if mode == "interactive":
            return "space: next"
        parts = []
        if self.advance.when is not None:
            parts.append("waits for " + " or ".join(self.advance.when.types()))
        if self.advance.timeout_s:
            parts.append(f"at most {self.advance.timeout_s:g}s")
        if self.advance.key:
            parts.append("space: skip")
        return "; ".join(parts)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    subject: str
    description: str = ""
    faults: dict[str, FaultSpec] = Field(default_factory=dict)
    default_fault: str
    requires_services: list[str] = Field(default_factory=list,
                                         description="wait for these services' svc.started first")
    chapters: list[Chapter] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_fault_is_played(self) -> Scenario:
        if self.faults and self.default_fault not in self.faults:
            raise ValueError(f"default_fault {self.default_fault!r} is not one of its faults")
        return self

    def chapters_for(self, fault: str) -> list[Chapter]:
        """The chapters played for ``fault``: incident chapters, or control ones."""
        spec = self.faults.get(fault)
        kind = "control" if spec is not None and spec.control else "incident"
        return [c for c in self.chapters if c.plays_for in ("all", kind)]


def load_scenario(name_or_path: str | None, subject: Subject) -> Scenario:
    """``subject``'s scenario called ``name_or_path`` (None: its default), or a YAML file at that path.

    Raises :class:`ScenarioError` if there is none, the file is not a valid
    scenario, it is about another subject, or it plays a fault the subject does not have."""
    known = subject.scenarios()
    name = name_or_path or subject.default_scenario()
    if name is None:
        raise ScenarioError(f"subject {subject.name!r} ships no scenario: give a scenario file")
    path = known.get(name) or Path(name)
    if name not in known and not path.suffix:
        raise ScenarioError(f"no scenario {name!r} for subject {subject.name} "
                            f"(it has: {', '.join(known) or 'none'}; or give a .yaml path)")
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ScenarioError(f"no scenario file {path}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    try:
        scenario = Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    if scenario.subject != subject.name:
        raise ScenarioError(f"{path}: scenario {scenario.name!r} is about subject {scenario.subject!r}, "
                            f"not {subject.name!r}")
    kinds = subject.catalogue().fault_kinds()
    unknown = [f for f in scenario.faults if f not in kinds]
    if unknown:
        raise ScenarioError(f"{path}: faults {', '.join(unknown)} are not in subject {subject.name}'s "
                            f"catalogue ({', '.join(kinds)})")
    return scenario

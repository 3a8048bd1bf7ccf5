"""A subject: one system under test, as a plug-in.

A subject package registers a :class:`Subject` under the entry-point group
``operator_lab.subjects`` (see :mod:`subjects.registry`). The subject hands each
service only its role, built by the class the subject declares for it in
:class:`Roles` from the subject's own settings (read from the environment the
launcher or compose gives every process):

| role | who gets it | what it is |
|---|---|---|
| :meth:`Subject.observer` | monitor | observe + invariants |
| :meth:`Subject.toolbox` | agent | tools, playbooks, a summary for a model, secrets |
| :meth:`Subject.fault_kit` | chaos | faults, targets |
| :meth:`Subject.workload` | loadgen | client traffic, black-box probe |
| :meth:`Subject.provisioner` | launcher | the local processes to run, or external endpoints |
| :meth:`Subject.console_rows` | console | the cluster and workload panels |

:meth:`Subject.catalogue` describes the faults, invariants and tools without
building any role or touching the system (``oplab subjects``), and
:meth:`Subject.scenarios` names the subject's demo scenarios (YAML files the
director validates). Constructing a role must not do I/O: connections are made
on first use.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from subjects.contract.console_rows import NeutralRows
from subjects.contract.fault_kit import Fault, FaultKit
from subjects.contract.observer import Invariant, Observer
from subjects.contract.provisioner import Provisioner
from subjects.contract.toolbox import Tool, Toolbox
from subjects.contract.workload import Workload


@dataclass(frozen=True)
class FaultInfo:
    """A fault as the catalogue shows it (from its class's declarations)."""

    kind: str
    description: str
    default_ttl_s: float
    params: dict[str, Any]
    """The JSON schema of the fault's parameters."""
    detected_by: str | None = None
    """The invariant the fault is meant to trip (None: a control)."""


@dataclass(frozen=True)
class InvariantInfo:
    """An invariant as the catalogue shows it (from its class's declarations)."""

    name: str
    description: str
    grace_s: float
    """How long (seconds) the rule must be seen broken before it is a violation."""


@dataclass(frozen=True)
class ToolInfo:
    """An agent's tool as the catalogue shows it (from its class's declarations)."""

    name: str
    description: str
    mutating: bool


@dataclass(frozen=True)
class Catalogue:
    """What a subject offers, described from its classes (no role built, no I/O)."""

    faults: list[FaultInfo] = field(default_factory=list)
    invariants: list[InvariantInfo] = field(default_factory=list)
    tools: list[ToolInfo] = field(default_factory=list)

    @classmethod
    def of(cls, faults: Iterable[type[Fault]], invariants: Iterable[type[Invariant]],
           tools: Iterable[type[Tool]]) -> Catalogue:
        return cls(
            faults=[FaultInfo(f.kind, f.description, f.default_ttl_s, f.params_model.model_json_schema(),
                              f.detected_by) for f in faults],
            invariants=[InvariantInfo(i.name, i.description, i.grace_s) for i in invariants],
            tools=[ToolInfo(t.name, t.description, t.mutating) for t in tools],
        )

    def fault_kinds(self) -> list[str]:
        return [f.kind for f in self.faults]


@dataclass(frozen=True)
class Roles:
    """What a subject builds each role with: its class, or any callable taking no arguments (the role
    reads the subject's settings from the environment). Building a role must do no I/O."""

    observer: Callable[[], Observer]
    toolbox: Callable[[], Toolbox]
    fault_kit: Callable[[], FaultKit]
    workload: Callable[[], Workload]
    provisioner: Callable[[], Provisioner]
    console_rows: Callable[[], NeutralRows] = NeutralRows
    """Default: the panels drawn from the neutral core."""


class Subject(abc.ABC):
    """One system under test. Subclasses set ``name``, ``description``, ``roles`` (each service's
    role is built from it) and the classes their catalogue describes (``fault_types``,
    ``invariant_types``, ``tool_types``); a subject that builds a role some other way overrides that role's method. Its
    scenarios are the YAML files in the ``scenarios/`` folder beside its module (:meth:`scenarios`)."""

    name: ClassVar[str]
    description: ClassVar[str]
    roles: ClassVar[Roles]
    fault_types: ClassVar[Sequence[type[Fault]]] = ()
    invariant_types: ClassVar[Sequence[type[Invariant]]] = ()
    tool_types: ClassVar[Sequence[type[Tool]]] = ()

    def catalogue(self) -> Catalogue:
        """The declared faults, invariants and tools, described from their classes (no role built, no I/O)."""
        return Catalogue.of(self.fault_types, self.invariant_types, self.tool_types)

    def observer(self) -> Observer:
        """The monitor's role: snapshots that never raise, and the invariants judged on them."""
        return self.roles.observer()

    def toolbox(self) -> Toolbox:
        """The agent's role: tools, playbooks, a summary for a model and the secrets to redact; no fault
        reaches it."""
        return self.roles.toolbox()

    def fault_kit(self) -> FaultKit:
        """The chaos service's role: the faults, and the targets they may touch (nothing else)."""
        return self.roles.fault_kit()

    def workload(self) -> Workload:
        """The load generator's role: real client traffic, one stats report per interval."""
        return self.roles.workload()

    def provisioner(self) -> Provisioner:
        """The launcher's role: the local processes to run for a site, or an external system's
        endpoints."""
        return self.roles.provisioner()

    def console_rows(self) -> NeutralRows:
        """The console's cluster and workload panels."""
        return self.roles.console_rows()

    def scenarios(self) -> dict[str, Path]:
        """Scenario name -> YAML file: each ``*.yaml`` in the ``scenarios/`` folder beside the subject's
        module (or, for a subclass defined elsewhere, the nearest base's that has one), named by its
        stem; the one named after the subject first (it is the default), then the others by name.
        Empty when no such folder exists."""
        folders = (Path(inspect.getfile(cls)).parent / "scenarios" for cls in type(self).__mro__
                   if issubclass(cls, Subject) and cls is not Subject)
        folder = next((f for f in folders if f.is_dir()), None)
        if folder is None:
            return {}
        files = sorted(folder.glob("*.yaml"), key=lambda path: (path.stem != self.name, path.stem))
        return {path.stem: path for path in files}

    def default_scenario(self) -> str | None:
        return next(iter(self.scenarios()), None)

"""The toolbox role (the agent's): typed tools, playbooks, a summary for a model, secrets.

- A :class:`Tool` is typed: a pydantic argument model, read-only or mutating.
  Tools never run shell commands or arbitrary backend commands. A mutating
  tool may name the entity a call acts on (:meth:`Tool.acts_on`, usually the
  argument its ``target_arg`` declares) in the fault kit's target names; the
  agent records it on the ticket's actions, and scores judge an action on an
  entity that was not faulty as unsafe.
- A :class:`Playbook` is the rules policy's knowledge for one invariant: which
  read-only tools diagnose it and which tool calls remedy it (the helpers after
  it cover what every subject's playbooks write alike).
- :meth:`Toolbox.summarize` turns a snapshot into a compact document for a
  model's prompt; it covers the neutral core (nodes and components that are
  not up), and a subject adds what its details say (:meth:`Toolbox.summarize_details`).
- :meth:`Toolbox.secrets` names values that must never be recorded or logged
  (passwords of the subject's endpoints).

The agent receives a toolbox and nothing else of the subject: no faults, no
fault names (see :mod:`subjects.contract.fault_kit`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from events import ObsSnapshot


class Arguments(BaseModel):
    """A tool's arguments (or a fault's parameters): the fields a subclass declares, and nothing
    else; an argument it does not declare is refused, never ignored. (A subclass's docstring would
    reach the model in its JSON schema: the fields' descriptions say what it needs.)"""

    model_config = ConfigDict(extra="forbid")


class NoArgs(Arguments):
    pass


class Tool(abc.ABC):
    """A typed operation the agent may call on the subject."""

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[BaseModel]] = NoArgs
    mutating: ClassVar[bool] = False
    target_arg: ClassVar[str | None] = None
    """The argument (of ``args_model``) that names the entity a mutating call acts on, in the fault
    kit's target names (``"node"``, ``"key"``...): what :meth:`acts_on` reads. None: it names none."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a misspelt target_arg would read as "unknown target" forever: never judged unsafe
        if cls.target_arg is not None and cls.target_arg not in cls.args_model.model_fields:
            raise TypeError(f"{cls.__name__}.target_arg {cls.target_arg!r} is not an argument of "
                            f"{cls.args_model.__name__} (its fields: {', '.join(cls.args_model.model_fields)})")

    @abc.abstractmethod
    async def run(self, args: BaseModel) -> Any:
        """Do it; return a JSON-serialisable result or raise SubjectError."""

    async def call(self, raw_args: dict[str, Any]) -> Any:
        """Validate ``raw_args`` against ``args_model`` (raises pydantic ValidationError), run."""
        return await self.run(self.args_model.model_validate(raw_args))

    def acts_on(self, args: BaseModel) -> str | None:
        """The entity a mutating call with these (validated) arguments acts on, named as the
        subject's fault kit names its targets (a node's id, a key, a server's name...), so a score can
        tell a remedy on the faulty entity from one on a healthy entity. No I/O.

        Default: the argument :attr:`target_arg` names, for a mutating tool; else None: unknown, and
        an unknown target is never judged unsafe. Name a target only where the fault kit uses the
        same name for the same thing."""
        if not self.mutating or self.target_arg is None:
            return None
        target = getattr(args, self.target_arg, None)
        return None if target is None else str(target)

    def target_of(self, raw_args: dict[str, Any]) -> str | None:
        """:meth:`acts_on` for raw arguments; None when they do not validate (such a call is refused)."""
        try:
            return self.acts_on(self.args_model.model_validate(raw_args))
        except ValidationError:
            return None


@dataclass(frozen=True)
class ToolCall:
    tool: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Playbook:
    """How the rules policy handles one invariant.

    ``diagnose`` names read-only calls made first (from the ticket's evidence);
    ``remedy`` picks mutating calls from the evidence and the diagnosis results
    (keyed by tool name); ``hypothesis`` states the diagnosis in words. An empty
    remedy means "escalate": the rules never guess.
    """

    invariant: str
    diagnose: Callable[[dict[str, Any]], list[ToolCall]]
    hypothesis: Callable[[dict[str, Any], dict[str, Any]], str]
    remedy: Callable[[dict[str, Any], dict[str, Any]], list[ToolCall]]


def diagnose_with(*tools: str) -> Callable[[dict[str, Any]], list[ToolCall]]:
    """A playbook's diagnosis that calls ``tools`` (without arguments), whatever the evidence."""
    return lambda evidence: [ToolCall(tool) for tool in tools]


def call_on(tool: str, field: str, **args: Any) -> Callable[..., list[ToolCall]]:
    """A playbook's diagnosis or remedy that calls ``tool`` on the entity the evidence names under
    ``field`` (see :func:`entity_of`), with ``{field: entity, **args}``; no call when it names none
    (a remedy then escalates)."""

    def calls(evidence: dict[str, Any], findings: dict[str, Any] | None = None) -> list[ToolCall]:
        entity = entity_of(evidence, field)
        return [ToolCall(tool, {field: entity, **args})] if entity else []

    return calls


def escalate(evidence: dict[str, Any], findings: dict[str, Any]) -> list[ToolCall]:
    """A playbook's remedy for a symptom no tool can fix: none, which escalates."""
    return []


def entity_of(evidence: dict[str, Any], field: str) -> str:
    """What a violation's evidence names under ``field`` (``node``, ``key``, ``store``...), else the
    violation's own ``entity``; "" when neither says."""
    return str(evidence.get(field) or evidence.get("entity") or "")


def finding(findings: dict[str, Any], tool: str) -> dict[str, Any]:
    """The result of the diagnosis call to ``tool`` if it is a JSON object; else ``{}`` (not called, or
    not an object)."""
    result = findings.get(tool)
    return result if isinstance(result, dict) else {}


def neutral_summary(snap: ObsSnapshot) -> dict[str, Any]:
    """A snapshot's neutral core in few tokens: every node's status (with the subject's state and
    the detail when it is not up) and the components that are not up."""
    doc: dict[str, Any] = {"at": snap.observed_at.isoformat(timespec="seconds")}
    if not snap.ok:
        return {**doc, "ok": False, "error": snap.error}
    if snap.nodes:
        doc["nodes"] = {n.node: _status(n.status, n.state, n.detail) for n in snap.nodes}
    if snap.components:
        troubled = {c.name: _status(c.status, c.state, c.detail) for c in snap.components if c.status != "up"}
        doc["components"] = troubled or "all up"
    return doc


def _status(status: str, state: str, detail: str) -> str:
    if status == "up":
        return status if not state or state.lower() == "up" else f"up ({state})"
    named = f"{status} [{state}]" if state and state.lower() != status else status
    return f"{named} ({detail})" if detail else named


class Toolbox(abc.ABC):
    """What the agent gets of a subject: a description, tools, playbooks, a summariser, secrets."""

    description: ClassVar[str]
    """The system under the agent's care, in words, for the model's system prompt."""

    @abc.abstractmethod
    def tools(self) -> list[Tool]: ...

    @abc.abstractmethod
    def playbooks(self) -> list[Playbook]: ...

    def summarize(self, snapshot: ObsSnapshot) -> dict[str, Any]:
        """A snapshot in few tokens for a model: the neutral core (:func:`neutral_summary`) and, for a
        good snapshot, what :meth:`summarize_details` adds."""
        doc = neutral_summary(snapshot)
        if snapshot.ok:
            doc.update(self.summarize_details(snapshot))
        return doc

    def summarize_details(self, snapshot: ObsSnapshot) -> dict[str, Any]:
        """What the subject's details add to a good snapshot's summary: only what needs attention (it
        goes into a prompt). Default: nothing."""
        return {}

    def secrets(self) -> list[str]:
        """Values that must never be recorded or logged. Default: none."""
        return []

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools() if t.name == name), None)

    async def close(self) -> None:
        """Release connections. Default: nothing to release."""


class ListedToolbox(Toolbox):
    """A toolbox of the tools and playbooks it is built with (the usual case): :meth:`tools` and
    :meth:`playbooks` hand out copies of those lists."""

    def __init__(self, tools: Iterable[Tool], playbooks: Iterable[Playbook]) -> None:
        self._tools = list(tools)
        self._playbooks = list(playbooks)

    def tools(self) -> list[Tool]:
        return list(self._tools)

    def playbooks(self) -> list[Playbook]:
        return list(self._playbooks)

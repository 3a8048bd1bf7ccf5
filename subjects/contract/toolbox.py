"""The toolbox role (the agent's): typed tools, playbooks, a summary for a model, secrets.

- A :class:`Tool` is typed: a pydantic argument model, read-only or mutating.
  Tools never run shell commands or arbitrary backend commands. A mutating
  tool may name the entity a call acts on (:meth:`Tool.acts_on`) in the fault
  kit's target names; the agent records it on the ticket's actions, and scores
  judge an action on an entity that was not faulty as unsafe.
- A :class:`Playbook` is the rules policy's knowledge for one invariant: which
  read-only tools diagnose it and which tool calls remedy it.
- :meth:`Toolbox.summarize` turns a snapshot into a compact document for a
  model's prompt; the default covers the neutral core (nodes and components
  that are not up), a subject adds what its details say.
- :meth:`Toolbox.secrets` names values that must never be recorded or logged
  (passwords of the subject's endpoints).

The agent receives a toolbox and nothing else of the subject: no faults, no
fault names (see :mod:`subjects.contract.fault_kit`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from events import ObsSnapshot


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tool(abc.ABC):
    """A typed operation the agent may call on the subject."""

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[BaseModel]] = NoArgs
    mutating: ClassVar[bool] = False

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

        Default None: unknown, and an unknown target is never judged unsafe. Name a target only
        where the fault kit uses the same name for the same thing."""
        return None

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
        """A snapshot in few tokens for a model. Default: the neutral core."""
        return neutral_summary(snapshot)

    def secrets(self) -> list[str]:
        """Values that must never be recorded or logged. Default: none."""
        return []

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools() if t.name == name), None)

    async def close(self) -> None:
        """Release connections. Default: nothing to release."""

"""What a subject under test offers the lab: observation, invariants, tools, faults.

Services know subjects only through these types. An adapter is constructed
from its own settings (see each subject package) and is the only thing that
talks to the real system.

- ``observe()`` returns an :class:`~events.ObsSnapshot`; it never raises: a
  failed observation is a snapshot with ``ok=False`` and the error.
- An :class:`Invariant` is a pure function of recent snapshots and workload
  stats. Its grace period is judged from the timestamps in that history, so a
  restarted monitor that replays the history from the log decides the same.
- A :class:`Tool` is typed: a pydantic argument model, read-only or mutating.
  Tools never run shell commands or arbitrary backend commands.
- A :class:`Fault` injects, proves it took effect, and reverts from the undo
  data it returned (which is stored in the log).
- A :class:`Playbook` is the rules policy's knowledge for one invariant: which
  read-only tools diagnose it and which tool calls remedy it.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from events import ObsSnapshot, WorkloadStats


class AdapterError(Exception):
    """A tool, fault or observation could not do what was asked; the message says why."""


class RefusedError(AdapterError):
    """The request is invalid (unknown target, bad parameters) and nothing was done."""


# -- invariants -------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One entity breaking one invariant, with the evidence for it."""

    invariant: str
    entity: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


class Invariant(abc.ABC):
    """A rule the subject must keep. ``evaluate`` must be pure and total."""

    name: ClassVar[str]
    description: ClassVar[str]
    grace_s: ClassVar[float]

    @abc.abstractmethod
    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        """Violations now, given snapshots (oldest first) and workload stats (oldest first)."""


# -- tools ------------------------------------------------------------------


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
        """Do it; return a JSON-serialisable result or raise AdapterError."""

    async def call(self, raw_args: dict[str, Any]) -> Any:
        """Validate ``raw_args`` against ``args_model`` (raises pydantic ValidationError), run."""
        return await self.run(self.args_model.model_validate(raw_args))


# -- faults -----------------------------------------------------------------


@dataclass(frozen=True)
class Injection:
    """What an injection did: the resolved target and how to undo it."""

    target: str
    undo: dict[str, Any]


class Fault(abc.ABC):
    """A real way to break the subject, with proof and undo."""

    kind: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[BaseModel]] = NoArgs
    default_ttl_s: ClassVar[float] = 60.0

    async def resolve_target(self, target: str | None) -> str | None:
        """The concrete target an injection will hit (``None``: pick one). Called before
        anything is recorded or changed, so a conflict is refused with nothing injected
        and a request cut off by a crash names what it was about to break.
        Raise RefusedError for a target outside the lab. Default: as given."""
        return target

    @abc.abstractmethod
    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        """Break it. ``target`` None means: pick a suitable one. Raise RefusedError if invalid."""

    @abc.abstractmethod
    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        """Evidence that the fault took effect, or None if it has not (yet)."""

    @abc.abstractmethod
    async def revert(self, undo: dict[str, Any]) -> str:
        """Undo it (idempotent: reverting twice is harmless). Returns what was done."""

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        """Undo data derivable from the target alone, for an injection whose result was
        never recorded (the chaos service died mid-injection); None if it cannot be derived."""
        return None


# -- rules policy knowledge ------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    tool: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Playbook:
    """How the rules policy handles one invariant.

    ``diagnose`` names read-only calls made first (from the ticket's evidence);
    ``remedy`` picks mutating calls from the evidence and the diagnosis results
    (keyed by tool name); ``hypothesis`` states the diagnosis in words.
    """

    invariant: str
    diagnose: Callable[[dict[str, Any]], list[ToolCall]]
    hypothesis: Callable[[dict[str, Any], dict[str, Any]], str]
    remedy: Callable[[dict[str, Any], dict[str, Any]], list[ToolCall]]


# -- workload ---------------------------------------------------------------


StatsSink = Callable[[WorkloadStats], Awaitable[None]]


class Workload(abc.ABC):
    """Realistic client traffic on the subject that doubles as a black-box prober."""

    @abc.abstractmethod
    async def run(self, stop: asyncio.Event, on_stats: StatsSink, interval_s: float = 1.0) -> None:
        """Send traffic until ``stop`` is set; call ``on_stats`` once per interval."""


# -- the adapter ------------------------------------------------------------


class Adapter(abc.ABC):
    """One subject under test, as the lab's services see it."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abc.abstractmethod
    async def observe(self) -> ObsSnapshot: ...

    @abc.abstractmethod
    def invariants(self) -> list[Invariant]: ...

    @abc.abstractmethod
    def tools(self) -> list[Tool]: ...

    @abc.abstractmethod
    def faults(self) -> list[Fault]: ...

    @abc.abstractmethod
    def playbooks(self) -> list[Playbook]: ...

    @abc.abstractmethod
    def workload(self) -> Workload: ...

    @abc.abstractmethod
    def targets(self) -> list[str]:
        """Entities faults may target (everything else is outside the lab)."""

    async def close(self) -> None:
        """Release connections. Default: nothing to release."""

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools() if t.name == name), None)

    def fault(self, kind: str) -> Fault | None:
        return next((f for f in self.faults() if f.kind == kind), None)

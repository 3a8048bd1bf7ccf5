"""The fault kit role (the chaos service's): real faults with proof and undo, and the lab's targets.

A :class:`Fault` resolves its target first (nothing is touched for a refused
one), injects, proves it took effect, and reverts from the undo data it returned
(which the chaos service stores in the log), idempotently. Where it can, it
derives an undo from the target alone, for an injection whose record a crash
cut off. A revert says whether it changed anything. Only the chaos service holds a fault kit: the agent never sees one.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from subjects.contract.toolbox import NoArgs


@dataclass(frozen=True)
class Reverted:
    """What a revert did. ``changed`` is False when there was nothing left to undo: the
    system had recovered already (an operator fixed it, it healed), or the effect died
    with the process that ran it. Scoring leans on it: a revert that changed nothing
    did not fix anything."""

    detail: str
    changed: bool = True


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
    detected_by: ClassVar[str | None] = None
    """The invariant this fault is meant to trip (its name in the subject's catalogue); None for a
    control fault, which must trip nothing. The e2e tests and the docs read it from here."""

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
    async def revert(self, undo: dict[str, Any]) -> Reverted:
        """Undo it (idempotent: reverting twice is harmless). Says what was done, and
        whether anything needed undoing."""

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        """Undo data derivable from the target alone, for an injection whose result was
        never recorded (the chaos service died mid-injection); None if it cannot be derived."""
        return None

    async def close(self) -> None:
        """Stop whatever the fault runs in this process (default: nothing)."""


class FaultKit(abc.ABC):
    """What the chaos service gets of a subject: its faults and the targets that belong to the lab."""

    @abc.abstractmethod
    def faults(self) -> list[Fault]: ...

    @abc.abstractmethod
    def targets(self) -> list[str]:
        """Entities faults may target (everything else is outside the lab)."""

    async def refresh(self) -> None:
        """Discover the targets anew, for a subject whose members come from the system itself (the chaos
        service calls it before it lists or injects). Default: the targets are configured, nothing to do."""

    def fault(self, kind: str) -> Fault | None:
        return next((f for f in self.faults() if f.kind == kind), None)

    async def close(self) -> None:
        """Stop running faults' tasks and release connections."""
        for fault in self.faults():
            await fault.close()

"""The observer role (the monitor's): observe the subject, judge its invariants.

- :meth:`Observer.observe` returns an :class:`~events.ObsSnapshot` and never
  raises: a failed observation is a snapshot with ``ok=False`` and the error
  (:func:`observe_within` bounds one in time and turns what it raises into that).
- An :class:`Invariant` is a pure, total function of recent snapshots and
  workload stats. Its grace period is judged from the timestamps in that
  history (see :mod:`subjects.judging`), so a restarted monitor that replays the
  history from the log decides the same. Invariants are named for the symptom
  observed, never for a fault that may cause it: the name reaches the operator
  (and a model) in the ticket.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from events import ObsSnapshot, WorkloadStats


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


class Observer(abc.ABC):
    """What the monitor gets of a subject: its eyes and its rules."""

    @abc.abstractmethod
    async def observe(self) -> ObsSnapshot:
        """One snapshot of the subject now. Never raises; failure is ``ok=False``."""

    @abc.abstractmethod
    def invariants(self) -> list[Invariant]:
        """The rules the monitor judges on every tick."""

    async def close(self) -> None:
        """Release connections. Default: nothing to release."""


async def observe_within(observation: Awaitable[ObsSnapshot], timeout_s: float,
                         failed: Callable[[str], ObsSnapshot],
                         describe: Callable[[Exception], str] = str) -> ObsSnapshot:
    """``observation``, given ``timeout_s`` to finish; never raises. One that runs out of time or raises
    is ``failed(reason)``: ``observation timed out after <timeout_s>s``, or ``describe(exc)`` (the
    exception's type name when that says nothing)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await observation
    except Exception as exc:  # an observation must never raise
        if isinstance(exc, TimeoutError):
            return failed(f"observation timed out after {timeout_s:g}s")
        return failed(describe(exc) or type(exc).__name__)

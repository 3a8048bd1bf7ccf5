"""Every fault's life folded from ``chaos.*`` events, and the one rule of which faults are in effect.

The chaos service (:mod:`services.chaos`) writes a fault's events in this order:

- ``fault_requested``, then, once the subject was asked to inject it, either
  ``fault_injected`` (in effect on its target, with its undo data and ``expires_at``) or
  ``fault_failed(stage="inject")``: the subject refused or failed; or the injection was undone
  before its record (its target turned out taken, or ``fault_injected`` could not be stored);
  or the next instance found the request cut off by a crash;
- after ``fault_injected``: ``fault_effective`` or ``fault_failed(stage="verify")``;
  ``fault_adopted`` when a successor took it over; ``fault_failed(stage="revert")`` for each
  revert that failed (it is retried); finally ``fault_reverted`` (``ttl``, ``explicit``,
  ``shutdown``).

**The rule.** A fault is *active* - in effect, and held by chaos: listed, its target taken,
reverted at its TTL or when asked - from ``fault_injected`` until ``fault_reverted``. Only
``fault_reverted`` ends it, and nothing after it brings the fault back. A ``fault_failed``
never ends an injected fault:

- ``verify``: no effect was seen in time; the fault stays in place until it is reverted;
- ``revert``: the undo failed; the fault stays in place and the revert is retried;
- ``inject`` *after* ``fault_injected``: the record was stored but its acknowledgement was
  lost, so the instance that injected it undid it at once (or, if that undo failed, holds it
  and retries; only the reason's text tells which). Every chaos service that folds the log
  adopts it and reverts it again at its TTL (every undo is idempotent): it is active until
  that ``fault_reverted``, with the failure as its ``error``.

A ``fault_failed(stage="inject")`` with no injection before it: the fault never got in
(``failed``). A fault is *pending* from ``fault_requested`` until its first outcome.
``fault_effective`` and ``fault_adopted`` also say the fault was injected, for a log read
from after its ``fault_injected``.

What the log cannot show: an injection undone before its record whose undo failed too is held
in memory by the instance that made it and reverted by it (retried, or at its stop); from its
``fault_failed(stage="inject")`` to its ``fault_reverted`` the log says ``failed``.

Read by the chaos service's own fold (:class:`services.chaos.ledger.Ledger`, which adopts what
is active), the run timeline and the console's chaos panel (:mod:`projections.timeline`), the
incident timeline (:mod:`projections.incident`) and ``oplab state`` (:mod:`oplab.run_state`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from events import FaultAdopted, FaultEffective, FaultFailed, FaultInjected, FaultRequested, FaultReverted, Payload
from projections.run_fold import RunFold

FaultStatus = Literal["requested", "injected", "effective", "reverted", "failed"]

ACTIVE_FAULT_STATUSES: frozenset[str] = frozenset({"injected", "effective"})

FAULT_EVENTS: tuple[str, ...] = (FaultRequested.TYPE, FaultInjected.TYPE, FaultEffective.TYPE, FaultAdopted.TYPE,
                                 FaultFailed.TYPE, FaultReverted.TYPE)


@dataclass(slots=True)
class FaultLife:
    """One fault's life as told by its ``chaos.*`` events (see the module docstring for the rule).

    ``status``: ``requested`` (pending), then ``injected`` -> ``effective`` -> ``reverted``, or
    ``failed`` when it never got in. ``injected``, ``effective`` and ``adopted`` say whether the
    log carried that event (also when folded without times); ``error`` is the last failure
    (``stage: reason``) until a revert; ``failures`` every failure, in order.
    """

    fault_id: str
    kind: str = "?"
    target: str | None = None
    status: FaultStatus = "requested"
    ttl_s: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    undo: dict[str, Any] = field(default_factory=dict)
    injected: bool = False
    effective: bool = False
    adopted: bool = False
    requested_at: datetime | None = None
    injected_at: datetime | None = None
    effective_at: datetime | None = None
    adopted_at: datetime | None = None
    expires_at: datetime | None = None
    reverted_at: datetime | None = None
    revert_reason: str | None = None
    revert_changed: bool | None = None  # False: the revert found nothing to undo
    error: str | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (stage, reason)

    @property
    def active(self) -> bool:
        """In effect right now: injected (or effective), not reverted."""
        return self.status in ACTIVE_FAULT_STATUSES

    @property
    def pending(self) -> bool:
        """Requested, with no outcome yet."""
        return self.status == "requested"

    def ttl_remaining_s(self, now: datetime) -> float | None:
        """Seconds until chaos reverts it on its own (never negative), or None if unknown."""
        if self.expires_at is None:
            return None
        return max(0.0, (self.expires_at - now).total_seconds())


class FaultFold(RunFold):
    """Pure fold of a run's faults: :meth:`apply` an event (its run checked) or :meth:`fold` a
    ``chaos.*`` payload (its time if known), in log order; read :attr:`faults` (by fault id, in
    the order first seen) or :meth:`active`. Never raises on a well-formed payload."""

    def __init__(self, run: str | None = None) -> None:
        super().__init__(run)
        self.faults: dict[str, FaultLife] = {}
        self._steps: dict[str, Callable[[Any, FaultLife, datetime | None], None]] = {
            FaultRequested.TYPE: self._requested,
            FaultInjected.TYPE: self._injected,
            FaultEffective.TYPE: self._effective,
            FaultAdopted.TYPE: self._adopted,
            FaultFailed.TYPE: self._failed,
            FaultReverted.TYPE: self._reverted,
        }
        self.handlers |= {kind: self._on_event for kind in FAULT_EVENTS}

    def fold(self, data: Payload, at: datetime | None = None) -> FaultLife | None:
        """Fold one payload; returns the life of the fault it is about (None: not a fault's event)."""
        step = self._steps.get(data.TYPE)
        if step is None:
            return None
        fault_id: str = data.fault_id  # type: ignore[attr-defined]
        life = self.faults.get(fault_id)
        if life is None:  # the log may start after the request (a partial replay)
            life = self.faults[fault_id] = FaultLife(fault_id)
        step(data, life, at)
        return life

    def active(self) -> list[FaultLife]:
        """The faults in effect, in the order they were first seen."""
        return [f for f in self.faults.values() if f.active]

    def _on_event(self, data: Payload, at: datetime) -> None:
        self.fold(data, at)

    # -- one step per event type ---------------------------------------------------

    @staticmethod
    def _requested(p: FaultRequested, life: FaultLife, at: datetime | None) -> None:
        life.kind, life.ttl_s, life.params, life.requested_at = p.kind, p.ttl_s, dict(p.params), at
        if life.target is None:
            life.target = p.target

    @staticmethod
    def _injected(p: FaultInjected, life: FaultLife, at: datetime | None) -> None:
        life.kind, life.target, life.params, life.undo = p.kind, p.target, dict(p.params), dict(p.undo)
        life.injected, life.injected_at, life.expires_at = True, at, p.expires_at
        if life.status in ("requested", "failed"):
            life.status = "injected"

    @staticmethod
    def _effective(p: FaultEffective, life: FaultLife, at: datetime | None) -> None:
        life.effective, life.effective_at = True, at
        if life.status in ("requested", "injected"):  # seen in effect: it was injected
            life.status = "effective"

    @staticmethod
    def _adopted(p: FaultAdopted, life: FaultLife, at: datetime | None) -> None:
        life.adopted, life.adopted_at, life.expires_at = True, at, p.expires_at
        if life.status == "requested":  # only what was injected is adopted
            life.status = "injected"

    @staticmethod
    def _failed(p: FaultFailed, life: FaultLife, at: datetime | None) -> None:
        life.failures.append((p.stage, p.reason))
        life.error = f"{p.stage}: {p.reason}"
        if p.stage == "inject" and life.status == "requested":  # never got in
            life.status = "failed"

    @staticmethod
    def _reverted(p: FaultReverted, life: FaultLife, at: datetime | None) -> None:
        if life.status == "reverted":  # ended at its first revert
            return
        life.status = "reverted"
        life.reverted_at, life.revert_reason, life.revert_changed = at, p.reason, p.changed
        life.error = None

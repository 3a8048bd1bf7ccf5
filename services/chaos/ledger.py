"""The faults a chaos service is responsible for, folded from ``chaos.*`` events.

- A fault is *pending* from ``fault_requested`` until any outcome
  (``fault_injected``, ``fault_failed`` or ``fault_reverted``). A fault still
  pending at start was being injected when its chaos service died.
- A fault is *active* from ``fault_injected`` until ``fault_reverted``. A
  ``fault_failed`` does not end it: a failed verification or revert leaves
  the fault in place, and a failed injection recorded after
  ``fault_injected`` (the record's ack was lost and the injection was undone
  in-process) is adopted by the next instance and reverted once more at its
  TTL, which is harmless as every undo is idempotent.

After a stop or a crash, the active faults in the log are exactly those left behind:
the next chaos service adopts them.

Beside each active fault the ledger keeps the id of its ``fault_injected`` event (when it
is folded from the log, or recorded here): what a fault's later events are caused by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import FaultEffective, FaultFailed, FaultInjected, FaultRequested, FaultReverted, Payload


@dataclass
class ActiveFault:
    fault_id: str
    kind: str
    target: str
    params: dict[str, Any]
    undo: dict[str, Any]
    expires_at: datetime
    effective: bool = False
    injected_id: str | None = None  # its fault_injected event (None: the log does not carry it)

    def as_dict(self) -> dict[str, Any]:
        return {"fault_id": self.fault_id, "kind": self.kind, "target": self.target,
                "params": self.params, "expires_at": self.expires_at.isoformat(),
                "effective": self.effective}


class Ledger:
    def __init__(self) -> None:
        self.active: dict[str, ActiveFault] = {}
        self.pending: dict[str, FaultRequested] = {}
        self.unrecorded: set[str] = set()  # active here, yet not in the log as injected
        self.requests: dict[str, FaultRequested] = {}  # by the requester's request_id
        self.requested_ids: dict[str, str] = {}  # fault id -> its fault_requested event's id, when known
        self._handlers: dict[str, Callable[[Any, str | None], None]] = {
            FaultRequested.TYPE: self._requested,
            FaultInjected.TYPE: self._injected,
            FaultEffective.TYPE: self._effective,
            FaultFailed.TYPE: self._failed,
            FaultReverted.TYPE: self._reverted,
        }

    def apply(self, data: Payload, event_id: str | None = None) -> None:
        """Fold one ``chaos.*`` payload; ``event_id``: its event's id (kept for an injection)."""
        handler = self._handlers.get(data.TYPE)
        if handler is not None:
            handler(data, event_id)

    def _requested(self, data: FaultRequested, event_id: str | None) -> None:
        self.pending[data.fault_id] = data
        if event_id is not None:
            self.requested_ids[data.fault_id] = event_id
        if data.request_id is not None:
            self.requests[data.request_id] = data

    def _injected(self, data: FaultInjected, event_id: str | None) -> None:
        self.pending.pop(data.fault_id, None)
        self.active[data.fault_id] = ActiveFault(data.fault_id, data.kind, data.target,
                                                 dict(data.params), dict(data.undo), data.expires_at,
                                                 injected_id=event_id)

    def _effective(self, data: FaultEffective, event_id: str | None) -> None:
        if data.fault_id in self.active:
            self.active[data.fault_id].effective = True

    def _failed(self, data: FaultFailed, event_id: str | None) -> None:
        self.pending.pop(data.fault_id, None)

    def _reverted(self, data: FaultReverted, event_id: str | None) -> None:
        self.pending.pop(data.fault_id, None)
        self.active.pop(data.fault_id, None)
        self.unrecorded.discard(data.fault_id)

    def track(self, fault: ActiveFault) -> None:
        """Hold a fault in effect that the log does not carry as injected (its record failed)."""
        self.active[fault.fault_id] = fault
        self.unrecorded.add(fault.fault_id)

    def on_target(self, target: str) -> ActiveFault | None:
        return next((f for f in self.active.values() if f.target == target), None)

"""The faults a chaos service is responsible for, folded from ``chaos.*`` events.

- A fault is *pending* from ``fault_requested`` until any outcome
  (``fault_injected``, ``fault_failed`` or ``fault_reverted``). A fault still
  pending at start was being injected when its chaos service died.
- A fault is *active* from ``fault_injected`` until ``fault_reverted``. A
  ``fault_failed`` does not end it: a failed verification or revert leaves
  the fault in place, and a failed injection recorded after
  ``fault_injected`` (the record's ack was lost and the injection was undone
  in-process) is reverted once more at the next start, which is harmless as
  every undo is idempotent.

After a crash, the active faults in the log are exactly those left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import FaultFailed, FaultInjected, FaultRequested, FaultReverted, Payload


@dataclass
class ActiveFault:
    fault_id: str
    kind: str
    target: str
    params: dict[str, Any]
    undo: dict[str, Any]
    expires_at: datetime
    effective: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"fault_id": self.fault_id, "kind": self.kind, "target": self.target,
                "params": self.params, "expires_at": self.expires_at.isoformat(),
                "effective": self.effective}


class Ledger:
    def __init__(self) -> None:
        self.active: dict[str, ActiveFault] = {}
        self.pending: dict[str, FaultRequested] = {}

    def apply(self, data: Payload) -> None:
        if isinstance(data, FaultRequested):
            self.pending[data.fault_id] = data
        elif isinstance(data, FaultInjected):
            self.pending.pop(data.fault_id, None)
            self.active[data.fault_id] = ActiveFault(data.fault_id, data.kind, data.target,
                                                     dict(data.params), dict(data.undo), data.expires_at)
        elif isinstance(data, FaultFailed):
            self.pending.pop(data.fault_id, None)
        elif isinstance(data, FaultReverted):
            self.pending.pop(data.fault_id, None)
            self.active.pop(data.fault_id, None)

    def track(self, fault: ActiveFault) -> None:
        """Hold a fault in effect that the log does not carry as injected (its record failed)."""
        self.active[fault.fault_id] = fault

    def on_target(self, target: str) -> ActiveFault | None:
        return next((f for f in self.active.values() if f.target == target), None)

"""The faults a chaos service is responsible for, folded from ``chaos.*`` events.

A fault is *active* from ``fault_injected`` until ``fault_reverted``. After a
crash, the faults still active in the log are exactly those left behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import FaultInjected, FaultReverted, Payload


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

    def apply(self, data: Payload) -> None:
        if isinstance(data, FaultInjected):
            self.active[data.fault_id] = ActiveFault(data.fault_id, data.kind, data.target,
                                                     dict(data.params), dict(data.undo), data.expires_at)
        elif isinstance(data, FaultReverted):
            self.active.pop(data.fault_id, None)

    def on_target(self, target: str) -> ActiveFault | None:
        return next((f for f in self.active.values() if f.target == target), None)

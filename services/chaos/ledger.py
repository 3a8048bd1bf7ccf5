"""The faults a chaos service is responsible for: the log's fold of every fault's life, plus what
only the live service needs.

Which faults are active is the one rule of :mod:`projections.faults` (read there): from
``fault_injected`` until ``fault_reverted``; a ``fault_failed`` never ends an injected fault -
a failed verification or revert leaves it in place, and a failed injection recorded after
``fault_injected`` (the record's acknowledgement was lost and the injection undone in-process)
is adopted by the next instance and reverted once more at its TTL, which is harmless as every
undo is idempotent. The console, ``oplab state`` and the timelines fold the same rule.

After a stop or a crash, the active faults in the log are exactly those left behind:
the next chaos service adopts them.

Beside the fold (``faults``) the ledger keeps, for the live service:

- ``active``: each active fault the log carries as injected, with its undo data and the id of
  its ``fault_injected`` event (what its later events are caused by), plus the faults held in
  memory that the log does not carry as injected (``unrecorded``: :meth:`Ledger.track`);
- ``pending``: the requests with no outcome yet; one still pending at start was being injected
  when its chaos service died;
- ``requests`` by the requester's request id, and ``requested_ids``: each fault's
  ``fault_requested`` event id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events import FaultInjected, FaultRequested, Payload
from projections.faults import FaultFold, FaultLife


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
        self.faults = FaultFold()  # every fault's life, by the log's rule (projections.faults)
        self.active: dict[str, ActiveFault] = {}
        self.pending: dict[str, FaultRequested] = {}
        self.unrecorded: set[str] = set()  # active here, yet not in the log as injected
        self.requests: dict[str, FaultRequested] = {}  # by the requester's request_id
        self.requested_ids: dict[str, str] = {}  # fault id -> its fault_requested event's id, when known

    def apply(self, data: Payload, event_id: str | None = None) -> None:
        """Fold one ``chaos.*`` payload; ``event_id``: its event's id (kept for a request and an injection)."""
        life = self.faults.fold(data)
        if life is None:
            return
        fault_id = life.fault_id
        if isinstance(data, FaultRequested):
            self.pending[fault_id] = data
            if event_id is not None:
                self.requested_ids[fault_id] = event_id
            if data.request_id is not None:
                self.requests[data.request_id] = data
        if not life.pending:  # an outcome: injected, failed or reverted
            self.pending.pop(fault_id, None)
        if life.status == "reverted":
            self.active.pop(fault_id, None)
            self.unrecorded.discard(fault_id)
        elif life.active:
            self._hold(life, event_id if isinstance(data, FaultInjected) else None)

    def _hold(self, life: FaultLife, injected_id: str | None) -> None:
        """Keep an active fault the log carries as injected (with its undo), or bring it up to date."""
        held = self.active.get(life.fault_id)
        if held is None:
            if not life.injected or life.target is None or life.expires_at is None:
                return  # seen effective or adopted, but not injected: no undo to revert it with
            held = self.active[life.fault_id] = ActiveFault(life.fault_id, life.kind, life.target, dict(life.params),
                                                            dict(life.undo), life.expires_at)
        held.effective = held.effective or life.effective
        if injected_id is not None:
            held.injected_id = injected_id

    def track(self, fault: ActiveFault) -> None:
        """Hold a fault in effect that the log does not carry as injected (its record failed)."""
        self.active[fault.fault_id] = fault
        self.unrecorded.add(fault.fault_id)

    def on_target(self, target: str) -> ActiveFault | None:
        return next((f for f in self.active.values() if f.target == target), None)

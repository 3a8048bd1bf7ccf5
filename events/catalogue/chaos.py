"""``chaos.*``: a fault's life. ``fault_injected`` carries the undo data, so a
restarted chaos service can revert what a crashed one left behind."""

from datetime import datetime
from typing import Any, Literal

from events.envelope import Payload


class FaultRequested(Payload):
    TYPE = "chaos.fault_requested"
    fault_id: str
    kind: str
    target: str | None = None
    params: dict[str, Any] = {}
    ttl_s: float


class FaultInjected(Payload):
    TYPE = "chaos.fault_injected"
    fault_id: str
    kind: str
    target: str
    params: dict[str, Any] = {}
    undo: dict[str, Any] = {}
    expires_at: datetime


class FaultEffective(Payload):
    TYPE = "chaos.fault_effective"
    fault_id: str
    evidence: dict[str, Any] = {}


class FaultReverted(Payload):
    TYPE = "chaos.fault_reverted"
    fault_id: str
    reason: Literal["ttl", "explicit", "restart", "shutdown"]
    detail: str = ""


class FaultFailed(Payload):
    TYPE = "chaos.fault_failed"
    fault_id: str
    stage: Literal["inject", "verify", "revert"]
    reason: str

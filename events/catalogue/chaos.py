"""``chaos.*``: a fault's life. ``fault_injected`` carries the undo data, so a
restarted chaos service can revert what a crashed one left behind."""

from datetime import datetime
from typing import Any, Literal

from events.envelope import Payload


class FaultRequested(Payload):
    """An injection asked for. ``request_id``: the requester's key for it (the director's
    entry action), so a repeated request is answered with this fault, not a second one."""

    TYPE = "chaos.fault_requested"
    fault_id: str
    kind: str
    target: str | None = None
    params: dict[str, Any] = {}
    ttl_s: float
    request_id: str | None = None


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


class FaultAdopted(Payload):
    """A chaos service took over a fault a predecessor left in effect (it stopped or crashed):
    it reverts it when its TTL runs out (``expires_at`` as injected) or when asked."""

    TYPE = "chaos.fault_adopted"
    fault_id: str
    expires_at: datetime


class FaultReverted(Payload):
    """A fault undone. ``reason``: ``ttl``, ``explicit`` (a revert command), ``shutdown`` (the
    lab going down) or ``restart`` (runs before hand-over: a restarted chaos service reverted
    what it found). ``changed`` False: there was nothing left to undo (the system had recovered,
    or the effect died with its process); None in runs recorded before it was kept."""

    TYPE = "chaos.fault_reverted"
    fault_id: str
    reason: Literal["ttl", "explicit", "restart", "shutdown"]
    detail: str = ""
    changed: bool | None = None


class FaultFailed(Payload):
    TYPE = "chaos.fault_failed"
    fault_id: str
    stage: Literal["inject", "verify", "revert"]
    reason: str

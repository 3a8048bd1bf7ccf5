"""``chaos.*``: a fault's life. ``fault_injected`` carries the undo data, so a
restarted chaos service can revert what a crashed one left behind."""

from datetime import datetime
from typing import Any, Literal

from events.envelope import Payload


class FaultPayload(Payload):
    """Base of all chaos events: each names its fault (the id chaos gave it when requested)."""

    fault_id: str


class FaultRequested(FaultPayload):
    """An injection asked for. ``request_id``: the requester's key for it (the director's
    entry action), so a repeated request is answered with this fault, not a second one."""

    TYPE = "chaos.fault_requested"
    kind: str
    target: str | None = None
    params: dict[str, Any] = {}
    ttl_s: float
    request_id: str | None = None


class FaultInjected(FaultPayload):
    TYPE = "chaos.fault_injected"
    kind: str
    target: str
    params: dict[str, Any] = {}
    undo: dict[str, Any] = {}
    expires_at: datetime


class FaultEffective(FaultPayload):
    TYPE = "chaos.fault_effective"
    evidence: dict[str, Any] = {}


class FaultAdopted(FaultPayload):
    """A chaos service took over a fault a predecessor left in effect (it stopped or crashed):
    it reverts it when its TTL runs out (``expires_at`` as injected) or when asked."""

    TYPE = "chaos.fault_adopted"
    expires_at: datetime


class FaultReverted(FaultPayload):
    """A fault undone. ``reason``: ``ttl``, ``explicit`` (a revert command), ``shutdown`` (the
    lab going down) or ``restart`` (runs before hand-over: a restarted chaos service reverted
    what it found). ``changed`` False: there was nothing left to undo (the system had recovered,
    or the effect died with its process); None in runs recorded before it was kept."""

    TYPE = "chaos.fault_reverted"
    reason: Literal["ttl", "explicit", "restart", "shutdown"]
    detail: str = ""
    changed: bool | None = None


class FaultFailed(FaultPayload):
    TYPE = "chaos.fault_failed"
    stage: Literal["inject", "verify", "revert"]
    reason: str

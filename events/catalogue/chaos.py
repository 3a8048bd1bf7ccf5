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
    """The chaos service put the fault in effect on ``target`` (as the subject's fault kit resolved it), with ``params``
    as validated. ``undo``: the kit's data to revert it (a successor that adopts the fault reverts with it);
    ``expires_at``: when its TTL runs out and it is reverted."""

    TYPE = "chaos.fault_injected"
    kind: str
    target: str
    params: dict[str, Any] = {}
    undo: dict[str, Any] = {}
    expires_at: datetime


class FaultEffective(FaultPayload):
    """The chaos service saw the fault's effect on the real system (polled after the injection, or by a successor after
    adopting it); ``evidence``: what the subject's fault kit observed (the kit's own shape, possibly empty)."""

    TYPE = "chaos.fault_effective"
    evidence: dict[str, Any] = {}


class FaultAdopted(FaultPayload):
    """A chaos service took over a fault a predecessor left in effect (it stopped or crashed):
    it reverts it when its TTL runs out (``expires_at`` as injected) or when asked."""

    TYPE = "chaos.fault_adopted"
    expires_at: datetime


class FaultReverted(FaultPayload):
    """A fault undone. ``reason``: ``ttl``, ``explicit`` (a revert command), ``shutdown`` (the lab
    going down, or a stopping chaos service undoing an injection the log does not carry) or
    ``restart`` (only in runs recorded before hand-over, when a restarted chaos service reverted what
    it found; no longer recorded) or ``abandoned`` (the service could not be sure its
    ``chaos.fault_injected`` was stored, so it undid the injection at once, after its
    ``chaos.fault_failed``). ``changed`` False: there was nothing left to undo (the system had
    recovered, or the effect died with its process); None in runs recorded before it was kept."""

    TYPE = "chaos.fault_reverted"
    reason: Literal["ttl", "explicit", "restart", "shutdown", "abandoned"]
    detail: str = ""
    changed: bool | None = None


class FaultFailed(FaultPayload):
    """A step of the fault did not happen. ``inject``: refused or failed by the subject, undone (its target already had
    a fault, or its record could not be stored), or cut off by a crash (recorded by the next chaos service); ``verify``:
    no effect seen within ``effective_timeout_s``; ``revert``: the undo failed (recorded once). After ``verify`` and
    ``revert`` the fault stays active, and a failed revert is retried."""

    TYPE = "chaos.fault_failed"
    stage: Literal["inject", "verify", "revert"]
    reason: str

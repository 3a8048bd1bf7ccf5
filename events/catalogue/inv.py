"""``inv.*``: invariant transitions (not every evaluation, only changes)."""

from datetime import datetime
from typing import Any

from events.envelope import Payload


class InvariantPayload(Payload):
    """A transition of one invariant on one entity (a node, a key, a component: the subject names it)."""

    invariant: str
    entity: str


class InvariantViolated(InvariantPayload):
    TYPE = "inv.violated"
    evidence: dict[str, Any] = {}
    first_seen: datetime
    summary: str = ""


class InvariantCleared(InvariantPayload):
    TYPE = "inv.cleared"
    first_seen: datetime
    violated_for_s: float


class BaselineEstablished(Payload):
    """The monitor starts judging: it has seen the subject whole (``healthy``: observed, every
    node and component up) or gave up waiting for that after ``waited_s`` (``healthy`` False).
    No violation is judged, and no ticket opened, before it: a subject still starting is
    no incident."""

    TYPE = "inv.baseline"
    healthy: bool
    waited_s: float
    detail: str = ""

"""``inv.*``: invariant transitions (not every evaluation, only changes)."""

from datetime import datetime
from typing import Any

from events.envelope import Payload


class InvariantPayload(Payload):
    """A transition of one invariant on one entity (a node, a key, a component: the subject names it)."""

    invariant: str
    entity: str


class InvariantViolated(InvariantPayload):
    """The monitor judged the invariant newly broken on the entity (its grace period, if any, passed): a violation
    episode begins, and opens a ticket (or recurs the one still open). ``first_seen``: when it was judged so (the
    snapshot's ``observed_at`` or the stats' ``ended_at``), which names the episode; ``summary``, ``evidence``: the
    subject's."""

    TYPE = "inv.violated"
    evidence: dict[str, Any] = {}
    first_seen: datetime
    summary: str = ""


class InvariantCleared(InvariantPayload):
    """The monitor judged the violated invariant holding again on the entity: the episode that began at ``first_seen``
    ended ``violated_for_s`` seconds later. The agent's verification waits for it; an unclaimed ticket for it is
    resolved as self-healed."""

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

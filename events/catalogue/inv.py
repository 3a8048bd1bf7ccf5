"""``inv.*``: invariant transitions (not every evaluation, only changes)."""

from datetime import datetime
from typing import Any

from events.envelope import Payload


class InvariantViolated(Payload):
    TYPE = "inv.violated"
    invariant: str
    entity: str
    evidence: dict[str, Any] = {}
    first_seen: datetime
    summary: str = ""


class InvariantCleared(Payload):
    TYPE = "inv.cleared"
    invariant: str
    entity: str
    first_seen: datetime
    violated_for_s: float

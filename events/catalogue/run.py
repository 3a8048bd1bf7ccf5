"""``run.*``: a lab session's start and end."""

from typing import Any

from events.envelope import Payload


class RunStarted(Payload):
    TYPE = "run.started"
    scenario: str
    subject: str
    fault: str | None = None
    seed: int | None = None
    config: dict[str, Any] = {}


class RunFinished(Payload):
    TYPE = "run.finished"
    outcome: str
    summary: dict[str, Any] = {}

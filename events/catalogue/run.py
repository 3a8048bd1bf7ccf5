"""``run.*``: a lab session's start and end."""

from typing import Any

from events.envelope import Payload


class RunStarted(Payload):
    """A run began: recorded once by the director as it starts playing (a restarted director does not repeat it).
    ``scenario``, ``subject``: what the run plays, for good (services refuse a run recorded as another subject's);
    ``fault``: the scenario's fault it plays; ``config``: the director's ``mode`` and whether the fault is a
    ``control``; ``seed``: the run's seed (``OPLAB_SEED``: a campaign trial's, also on its
    ``campaign.trial_started``), None when it has none."""

    TYPE = "run.started"
    scenario: str
    subject: str
    fault: str | None = None
    seed: int | None = None
    config: dict[str, Any] = {}


class RunFinished(Payload):
    """The run's story ended: recorded by the director after the last chapter (or a ``finish`` action). ``outcome``: the
    run's scored outcome (``resolved``, ``escalated``, ``open``, ``undetected``, ``not_injected``, ``no_fault``; for a
    control fault ``no_action`` or ``false_positive``); ``summary``: the run's summary at that moment."""

    TYPE = "run.finished"
    outcome: str
    summary: dict[str, Any] = {}

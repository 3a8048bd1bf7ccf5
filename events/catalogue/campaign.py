"""``campaign.*``: an evaluation campaign, recorded under its own id as the run token
(``lab.<campaign>.campaign.<name>``).

A campaign is a matrix of faults x operator variants x seeded repeats on one subject. Each trial is
a run of its own in the same log; these events say which run is which trial, so a campaign can be
replayed, re-scored and resumed from the log alone: the trials planned (``started``), each trial's
run as it begins and ends (``trial_started`` / ``trial_finished``), and the end (``finished``).
"""

from typing import Any

from events.envelope import Payload


class CampaignStarted(Payload):
    """The campaign's plan. ``variants``: one object per operator variant (``name``, ``policy``,
    ``model``, ``settings`` overrides, ``replay_run``); ``plan``: one object per trial (``trial``,
    ``fault``, ``variant``, ``repeat``, ``seed``, ``control``, ``noise``), in the order they run."""

    TYPE = "campaign.started"
    campaign: str
    subject: str
    faults: list[str]
    variants: list[dict[str, Any]]
    repeats: int
    seed: int
    noise: bool = False
    plan: list[dict[str, Any]] = []


class TrialStarted(Payload):
    """``oplab eval`` starts a trial: recorded before the trial's processes start, with the run id it plays under
    (``run``). ``control``: its fault is a control (a legitimate condition no operator should act on); ``noise``: the
    subject's control fault is injected beside the real one. A trial resumed after an interruption gets a new one, under
    a new run id."""

    TYPE = "campaign.trial_started"
    campaign: str
    trial: int
    run: str
    fault: str
    variant: str
    repeat: int = 0
    seed: int = 0
    noise: bool = False
    control: bool = False


class TrialFinished(Payload):
    """A trial's run ended: ``outcome`` is its ``run.finished`` outcome, or why it was abandoned."""

    TYPE = "campaign.trial_finished"
    campaign: str
    trial: int
    run: str
    outcome: str
    wall_s: float = 0.0


class CampaignFinished(Payload):
    """Every trial of the plan has run: recorded by ``oplab eval`` after the last one. ``trials``: planned;
    ``completed``: run, those of earlier (resumed) attempts included. An interrupted campaign records no
    ``campaign.finished`` (so it can be resumed): ``interrupted`` is not set by the current runner."""

    TYPE = "campaign.finished"
    campaign: str
    trials: int
    completed: int
    interrupted: bool = False

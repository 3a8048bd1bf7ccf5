"""Evaluation campaigns (``oplab eval``): a matrix of faults x operator variants x seeded repeats on
one subject, each trial a run of its own in the one log, tagged by ``campaign.*`` events.

- :mod:`oplab.campaign.plan`: the campaign as asked for (flags or a file), validated, and its
  deterministic trial order;
- :mod:`oplab.campaign.trial_stack`: the lab a campaign runs on - NATS and the subject's
  infrastructure started once, each trial's services and subject processes started and stopped
  around it, in parallel;
- :mod:`oplab.campaign.record`: the campaign's events, written and folded back into a scoreboard;
- :mod:`oplab.campaign.runner`: runs (and resumes) a campaign trial by trial.
"""

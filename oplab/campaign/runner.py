"""Running a campaign: its plan recorded, then trial after trial on one :class:`CampaignLab`, each
trial a run of its own, watched until its ``run.finished``; resuming one that was cut off.

A trial is recorded as ``campaign.trial_started`` (with its new run id) *before* its processes
start and ``campaign.trial_finished`` (with the run's outcome) after its run finished, so the log
always says which trials are done: a resume (:func:`resume_campaign`) folds the campaign
(:func:`oplab.campaign.record.fold_campaign`) and runs every trial of the plan without a
``trial_finished`` - one that started but did not finish again, under a new run id (the fold
counts the newest run of a trial, so each trial is counted once).

With noise, the subject's control fault (a legitimate burst) is injected by the runner as soon as
the trial's real fault is injected (``chaos.fault_injected`` of the run): the real fault comes
first in the log, which is the one a trial is scored on (:mod:`projections.scores`). The director
reverts both at the end of the story.

Ctrl-C (or SIGTERM) stops cleanly: the current trial's faults are reverted and its processes
stopped, the lab taken down, and the campaign is *not* marked finished, so it can be resumed
(:class:`CampaignInterrupted` says how).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
import xmlrpc.client
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from events import Event, FaultFailed, FaultInjected, RunFinished, new_run_id
from events.bus import Bus
from events.commands import CommandError, request
from events.settings import BusSettings
from oplab.campaign.plan import Campaign, PlannedTrial, Variant
from oplab.campaign.record import SOURCE, CampaignRecorder, fold_campaign, read_scoreboard
from oplab.campaign.trial_stack import CampaignLab, campaign_of_running_stack
from oplab.crashes import brisk_scenario
from oplab.run_log import follow_run
from oplab.settings import LabSettings
from oplab.stack import Stack, StackError
from projections.scoreboard import CampaignFold, Scoreboard

log = logging.getLogger(__name__)


class CampaignInterrupted(Exception):
    """The campaign was stopped before its last trial; it can be resumed."""

    def __init__(self, campaign_id: str, done: int, total: int) -> None:
        super().__init__(f"campaign {campaign_id} interrupted after {done}/{total} trials; "
                         f"resume it: oplab eval --resume {campaign_id}")
        self.campaign_id = campaign_id


class CampaignNotFound(LookupError):
    """``--resume`` named a campaign the log does not hold."""


class Watcher(Protocol):
    """What the CLI shows while a campaign runs (a progress bar, or one line per trial)."""

    def begin(self, campaign_id: str, total: int, done: int) -> None: ...
    def trial_started(self, trial: PlannedTrial, run: str) -> None: ...
    def trial_finished(self, trial: PlannedTrial, run: str, outcome: str, wall_s: float) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass
class Timing:
    """Where one trial's wall time went: its processes starting (``up_s``), the story (``scenario_s``),
    its faults reverted and processes stopped (``down_s``)."""

    trial: int
    fault: str
    outcome: str
    up_s: float
    scenario_s: float
    down_s: float

    @property
    def wall_s(self) -> float:
        return self.up_s + self.scenario_s + self.down_s


@dataclass
class CampaignResult:
    campaign_id: str
    scoreboard: Scoreboard
    timings: list[Timing] = field(default_factory=list)
    setup_s: float = 0.0
    teardown_s: float = 0.0


def run_campaign(campaign: Campaign, campaign_id: str, settings: LabSettings, watcher: Watcher) -> CampaignResult:
    """Record the plan and run every trial (raises :class:`CampaignInterrupted` on Ctrl-C)."""
    return _Runner(campaign, campaign_id, settings, watcher).run(fresh=True, pending=campaign.trials)


def load_for_resume(campaign_id: str, settings: LabSettings) -> tuple[Campaign, CampaignFold]:
    """The campaign ``campaign_id`` as recorded and what of it is done, from the log. A lab left
    running by the campaign's killed process is taken down first."""
    from oplab.access import lab_nats_url

    stack = Stack(settings)
    if stack.running():
        owner = campaign_of_running_stack(stack.home)
        if owner is None:
            info = stack.info()
            raise StackError(f"a stack is already running here (run {info.run if info else '?'}): `oplab down` first")
        stack.down()  # what the interrupted campaign process left running (its faults reverted first)
    with lab_nats_url(settings, "viewer") as url:
        fold = asyncio.run(_fold(url, campaign_id))
    started = fold.started
    if started is None:
        raise CampaignNotFound(f"no campaign {campaign_id} in the log (`oplab eval show` needs one too)")
    campaign = Campaign(
        subject=started.subject, faults=list(started.faults),
        variants=[Variant.model_validate(v) for v in started.variants], repeats=started.repeats,
        seed=started.seed, noise=started.noise, noise_fault=_noise_fault(started.subject) if started.noise else None,
        parallel=1, controls=sorted({str(t["fault"]) for t in started.plan if t.get("control")}),
        trials=[PlannedTrial.model_validate(t) for t in started.plan])
    return campaign, fold


def resume_campaign(campaign_id: str, settings: LabSettings, watcher: Watcher) -> CampaignResult:
    """Run what is left of campaign ``campaign_id``: every planned trial without ``trial_finished``."""
    campaign, fold = load_for_resume(campaign_id, settings)
    done = {t.trial for t in fold.scoreboard().trials if t.finished}
    pending = [t for t in campaign.trials if t.trial not in done]
    if not pending and fold.closing is not None:  # nothing left: the scoreboard as the log has it
        watcher.note(f"campaign {campaign_id} has finished: nothing to resume")
        return CampaignResult(campaign_id, fold.scoreboard())
    return _Runner(campaign, campaign_id, settings, watcher).run(fresh=False, pending=pending)


async def _fold(nats_url: str, campaign_id: str) -> CampaignFold:
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source=SOURCE, ensure_stream=False)
    try:
        return await fold_campaign(bus, campaign_id)
    finally:
        await bus.close()


def _noise_fault(subject: str) -> str | None:
    from oplab.campaign.plan import plan_campaign

    return plan_campaign(subject=subject, faults=None, variants=[Variant(name="rules", policy="rules")], repeats=1,
                         seed=0, noise=True).noise_fault


class _Runner:
    def __init__(self, campaign: Campaign, campaign_id: str, settings: LabSettings, watcher: Watcher) -> None:
        self.campaign = campaign
        self.campaign_id = campaign_id
        self.settings = settings
        self.watcher = watcher
        self.lab = CampaignLab(settings, campaign.subject, campaign_id, progress=watcher.note)
        directory = self.lab.home / "campaigns" / campaign_id
        directory.mkdir(parents=True, exist_ok=True)
        self.scenario = Path(settings.scenario) if settings.scenario else brisk_scenario(campaign.subject, directory)
        self.timings: list[Timing] = []

    def run(self, *, fresh: bool, pending: list[PlannedTrial]) -> CampaignResult:
        total = len(self.campaign.trials)
        done = total - len(pending)
        t0 = time.monotonic()
        closed = False
        try:
            self.lab.open()
            if fresh:
                asyncio.run(self._record(lambda r: r.started(self.campaign)))
            setup_s = time.monotonic() - t0
            self.watcher.begin(self.campaign_id, total, done)
            for trial in pending:
                self._trial(trial)
                done += 1
            asyncio.run(self._record(lambda r: r.finished(total, done)))
            board = asyncio.run(read_scoreboard(self.lab.url_for("viewer"), self.campaign_id))
            t1 = time.monotonic()
            self.lab.close()
            closed = True
            return CampaignResult(self.campaign_id, board, self.timings, setup_s, time.monotonic() - t1)
        except (KeyboardInterrupt, SystemExit):
            self.watcher.note("stopping: reverting the current trial's faults and taking the lab down")
            raise CampaignInterrupted(self.campaign_id, done, total) from None
        except (OSError, xmlrpc.client.Fault, subprocess.CalledProcessError) as exc:
            # NATS or supervisord gone mid-campaign: a clear error (the lab comes down below), resumable
            raise StackError(f"the campaign's lab failed ({type(exc).__name__}: {exc}); what finished is in "
                             f"the log: `oplab eval --resume {self.campaign_id}`") from exc
        finally:
            if not closed:
                self.lab.close()

    async def _record(self, what: Callable[[CampaignRecorder], Awaitable[Event]]) -> Event:
        bus = await Bus.connect(BusSettings(nats_url=self.lab.url_for("operator")), source=SOURCE,
                                ensure_stream=False)
        try:
            return await what(CampaignRecorder(bus, self.campaign_id))
        finally:
            await bus.close()

    def _trial(self, trial: PlannedTrial) -> None:
        run = new_run_id()
        variant = self.campaign.variant(trial.variant)
        t0 = time.monotonic()
        asyncio.run(self._record(lambda r: r.trial_started(trial, run)))
        self.watcher.trial_started(trial, run)
        up = scenario = 0.0
        try:
            self.lab.start_trial(run=run, fault=trial.fault, scenario=self.scenario, agent_env=variant.env())
            up = time.monotonic() - t0
            outcome = asyncio.run(self._watch(run, trial))
            scenario = time.monotonic() - t0 - up
        except StackError as exc:
            outcome = f"failed: {exc}"
            log.warning("trial could not run trial=%s run=%s error=%s", trial.trial, run, exc)
        t1 = time.monotonic()
        self.lab.end_trial()
        down = time.monotonic() - t1
        wall = time.monotonic() - t0
        asyncio.run(self._record(lambda r: r.trial_finished(trial, run, outcome, wall)))
        self.timings.append(Timing(trial.trial, trial.fault, outcome, up, scenario or wall - up - down, down))
        self.watcher.trial_finished(trial, run, outcome, wall)

    async def _watch(self, run: str, trial: PlannedTrial) -> str:
        """Follow the trial's run until ``run.finished``; with noise, add the burst right after the fault."""
        bus = await Bus.connect(BusSettings(nats_url=self.lab.url_for("operator")), source=SOURCE,
                                ensure_stream=False)
        try:
            events, replay = await follow_run(bus, run)
        except BaseException:
            await bus.close()
            raise
        timeout = self.settings.demo_timeout_s
        try:
            if trial.noise and self.campaign.noise_fault:
                first = await events.wait_for(
                    lambda e: isinstance(e.data, FaultInjected | FaultFailed | RunFinished), timeout, "the fault")
                if isinstance(first.data, FaultInjected):
                    await self._inject_noise(bus, self.campaign.noise_fault)
            finished = await events.wait_for(lambda e: isinstance(e.data, RunFinished), timeout, "run.finished")
            assert isinstance(finished.data, RunFinished)
            return finished.data.outcome
        except TimeoutError:
            return f"timeout: the run did not finish within {timeout:.0f}s"
        finally:
            await replay.stop()
            await bus.close()

    async def _inject_noise(self, bus: Bus, kind: str) -> None:
        """The control fault beside the real one, on a target the real fault does not hold."""
        targets: list[str | None] = [None]
        with contextlib.suppress(CommandError, TimeoutError):
            targets += [t for t in (await request(bus.nc, "chaos", "list", timeout=5.0)).get("targets", [])
                        if isinstance(t, str)]
        reasons = []
        for target in targets:
            try:
                await request(bus.nc, "chaos", "inject", {"kind": kind, "target": target}, timeout=10.0)
                return
            except CommandError as exc:
                reasons.append(exc.description)
        self.watcher.note(f"the noise ({kind}) could not be injected: {reasons[-1] if reasons else 'no target'}")

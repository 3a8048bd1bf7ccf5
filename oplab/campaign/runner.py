"""Running a campaign: its plan recorded, then its trials on one :class:`CampaignLab` (or, with
``parallel``, on several slots of it, one trial each at a time), each trial a run of its own, watched
until its ``run.finished``; resuming one that was cut off.

A trial is recorded as ``campaign.trial_started`` (with its new run id) *before* its processes
start and ``campaign.trial_finished`` (with the run's outcome) after its run finished, so the log
always says which trials are done: a resume (:func:`resume_campaign`) folds the campaign
(:func:`oplab.campaign.record.read_campaign`) and runs every trial of the plan without a
``trial_finished`` - one that started but did not finish again, under a new run id (the fold
counts the newest run of a trial, so each trial is counted once).

With noise, the subject's control fault (a legitimate burst) is injected by the runner as soon as
the trial's real fault is injected (``chaos.fault_injected`` of the run): the real fault comes
first in the log, which is the one a trial is scored on (:mod:`projections.scores`). The director
reverts both at the end of the story.

Ctrl-C (or SIGTERM) stops cleanly: the running trials' faults are reverted and their processes
stopped, the lab (every slot) taken down, and the campaign is *not* marked finished, so it can be resumed
(:class:`CampaignInterrupted` says how).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from events import Event, FaultFailed, FaultInjected, RunFinished, new_run_id
from events.bus import Bus
from events.commands import CommandError, request
from events.settings import BusSettings
from oplab.campaign.plan import Campaign, PlannedTrial, Variant
from oplab.campaign.record import SOURCE, CampaignRecorder, read_campaign, read_scoreboard
from oplab.campaign.trial_stack import CampaignLab, campaign_of_running_stack
from oplab.crashes import brisk_scenario
from oplab.run_log import follow_run
from oplab.settings import LabSettings
from oplab.stack import Stack, StackError
from oplab.supervisor import SupervisorError
from projections.scoreboard import CampaignFold, Scoreboard

log = logging.getLogger(__name__)
T = TypeVar("T")


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


class _Serialised:
    """A watcher told by one trial slot at a time."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher
        self._lock = threading.Lock()

    def begin(self, campaign_id: str, total: int, done: int) -> None:
        with self._lock:
            self._watcher.begin(campaign_id, total, done)

    def trial_started(self, trial: PlannedTrial, run: str) -> None:
        with self._lock:
            self._watcher.trial_started(trial, run)

    def trial_finished(self, trial: PlannedTrial, run: str, outcome: str, wall_s: float) -> None:
        with self._lock:
            self._watcher.trial_finished(trial, run, outcome, wall_s)

    def note(self, message: str) -> None:
        with self._lock:
            self._watcher.note(message)


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


def load_for_resume(campaign_id: str, settings: LabSettings, parallel: int = 1) -> tuple[Campaign, CampaignFold]:
    """The campaign ``campaign_id`` as recorded (to run ``parallel`` trials at once) and what of it is
    done, from the log. A lab left running by the campaign's killed process is taken down first."""
    from oplab.access import lab_nats_url

    stack = Stack(settings)
    if stack.running() or stack.children():
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
        parallel=parallel, controls=sorted({str(t["fault"]) for t in started.plan if t.get("control")}),
        trials=[PlannedTrial.model_validate(t) for t in started.plan])
    return campaign, fold


def resume_campaign(campaign_id: str, settings: LabSettings, watcher: Watcher, parallel: int = 1) -> CampaignResult:
    """Run what is left of campaign ``campaign_id``: every planned trial without ``trial_finished``."""
    campaign, fold = load_for_resume(campaign_id, settings, parallel)
    done = {t.trial for t in fold.scoreboard().trials if t.finished}
    pending = [t for t in campaign.trials if t.trial not in done]
    if not pending and fold.closing is not None:  # nothing left: the scoreboard as the log has it
        watcher.note(f"campaign {campaign_id} has finished: nothing to resume")
        return CampaignResult(campaign_id, fold.scoreboard())
    return _Runner(campaign, campaign_id, settings, watcher).run(fresh=False, pending=pending)


async def _fold(nats_url: str, campaign_id: str) -> CampaignFold:
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source=SOURCE, ensure_stream=False)
    try:
        return (await read_campaign(bus, campaign_id)).fold
    finally:
        await bus.close()


def _noise_fault(subject: str) -> str | None:
    from oplab.campaign.plan import plan_campaign

    return plan_campaign(subject=subject, faults=None, variants=[Variant(name="rules", policy="rules")], repeats=1,
                         seed=0, noise=True).noise_fault


class _Runner:
    """Runs the pending trials on ``campaign.parallel`` slots (:class:`CampaignLab`), one worker
    thread per slot taking the next trial from one queue. Ctrl-C (or SIGTERM) reaches the main
    thread, which cancels what every worker awaits; each worker then reverts its trial's faults and
    stops its processes, and records nothing for the cut trial (a resume runs it again)."""

    def __init__(self, campaign: Campaign, campaign_id: str, settings: LabSettings, watcher: Watcher) -> None:
        self.campaign = campaign
        self.campaign_id = campaign_id
        self.settings = settings
        self.watcher = _Serialised(watcher)
        self.lab = CampaignLab(settings, campaign.subject, campaign_id, progress=self.watcher.note)
        self.slots = [self.lab]
        directory = self.lab.home / "campaigns" / campaign_id
        directory.mkdir(parents=True, exist_ok=True)
        self.scenario = Path(settings.scenario) if settings.scenario else brisk_scenario(campaign.subject, directory)
        self.timings: list[Timing] = []
        self._queue: queue.SimpleQueue[PlannedTrial] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._awaiting: dict[asyncio.Task[object], asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()

    def run(self, *, fresh: bool, pending: list[PlannedTrial]) -> CampaignResult:
        total = len(self.campaign.trials)
        t0 = time.monotonic()
        closed = False
        try:
            self.lab.open()
            if fresh:
                asyncio.run(self._record(self.lab, lambda r: r.started(self.campaign)))
            for number in range(1, min(self.campaign.parallel, len(pending))):
                self.slots.append(self.lab.slot(number))
                self.slots[-1].open()
            setup_s = time.monotonic() - t0
            self.watcher.begin(self.campaign_id, total, total - len(pending))
            self._run_trials(pending)
            asyncio.run(self._record(self.lab, lambda r: r.finished(total, total - len(pending) + len(self.timings))))
            board = asyncio.run(read_scoreboard(self.lab.url_for("viewer"), self.campaign_id))
            t1 = time.monotonic()
            closed = True  # a failure to come down is raised as it is, not taken for a failed campaign
            self._close()
            return CampaignResult(self.campaign_id, board, self.timings, setup_s, time.monotonic() - t1)
        except (KeyboardInterrupt, SystemExit):
            self.watcher.note("stopping: reverting the current trials' faults and taking the lab down")
            raise CampaignInterrupted(self.campaign_id, total - len(pending) + len(self.timings), total) from None
        except (OSError, SupervisorError, subprocess.CalledProcessError) as exc:
            # NATS or supervisord gone mid-campaign: a clear error (the lab comes down below), resumable
            raise StackError(f"the campaign's lab failed ({type(exc).__name__}: {exc}); what finished is in "
                             f"the log: `oplab eval --resume {self.campaign_id}`") from exc
        finally:
            if not closed:  # an error is on its way out: one from coming down must not replace it
                try:
                    self._close()
                except Exception as exc:
                    log.warning("the campaign's lab did not come down cleanly", extra={"error": repr(exc)})
                    self.watcher.note(f"the lab did not come down cleanly ({exc}): `oplab down` finishes it")

    def _run_trials(self, pending: list[PlannedTrial]) -> None:
        """Every pending trial, each slot's worker taking the next; the first failure of a worker
        (its lab broke) or an interrupt stops them all, and is raised here."""
        for trial in pending:
            self._queue.put(trial)
        pool = ThreadPoolExecutor(max_workers=len(self.slots), thread_name_prefix="trial-slot")
        try:
            futures = [pool.submit(self._work, slot) for slot in self.slots]
            for future in as_completed(futures):
                future.result()
        except BaseException:
            self._stop_workers()
            raise
        finally:
            pool.shutdown(wait=True)  # each worker has cleaned up its trial

    def _work(self, slot: CampaignLab) -> None:
        while not self._stopping.is_set():
            try:
                trial = self._queue.get_nowait()
            except queue.Empty:
                return
            self._trial(slot, trial)

    def _stop_workers(self) -> None:
        self._stopping.set()
        with self._lock:
            for task, loop in self._awaiting.items():
                loop.call_soon_threadsafe(task.cancel)

    def _await(self, coro: Coroutine[object, object, T]) -> T:
        """Run ``coro`` on this worker thread, cancelled by :meth:`_stop_workers`."""

        async def main() -> T:
            task = asyncio.current_task()
            assert task is not None
            with self._lock:
                if self._stopping.is_set():
                    coro.close()
                    raise asyncio.CancelledError
                self._awaiting[task] = asyncio.get_running_loop()
            try:
                return await coro
            finally:
                with self._lock:
                    self._awaiting.pop(task, None)

        return asyncio.run(main())

    def _close(self) -> None:
        """The further slots first (they use the first one's NATS), all at once; then the first one,
        whatever became of the others. The first failure is raised once all were tried."""
        failures: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=len(self.slots)) as pool:
            for future in [pool.submit(slot.close) for slot in self.slots[1:]]:
                if (exc := future.exception()) is not None:
                    failures.append(exc)
        try:
            self.lab.close()
        except Exception as exc:
            failures.append(exc)
        if failures:
            raise failures[0]

    @staticmethod
    async def _record(lab: CampaignLab, what: Callable[[CampaignRecorder], Awaitable[Event]]) -> Event:
        bus = await Bus.connect(BusSettings(nats_url=lab.url_for("operator")), source=SOURCE, ensure_stream=False)
        try:
            return await what(CampaignRecorder(bus, lab.campaign_id))
        finally:
            await bus.close()

    def _trial(self, slot: CampaignLab, trial: PlannedTrial) -> None:
        run = new_run_id()
        variant = self.campaign.variant(trial.variant)
        t0 = time.monotonic()
        self._await(self._record(slot, lambda r: r.trial_started(trial, run)))
        self.watcher.trial_started(trial, run)
        up = scenario = 0.0
        try:
            try:
                slot.start_trial(run=run, fault=trial.fault, scenario=self.scenario, agent_env=variant.env(),
                                 seed=trial.seed, wait=self._await)  # Ctrl-C cancels the wait for readiness
                up = time.monotonic() - t0
                outcome = self._await(self._watch(slot, run, trial))
                scenario = time.monotonic() - t0 - up
            except StackError as exc:
                outcome = f"failed: {exc}"
                log.warning("trial could not run", extra={"trial": trial.trial, "run": run, "error": str(exc)})
        finally:  # also when cut short: no fault of the trial outlives it
            t1 = time.monotonic()
            slot.end_trial()
            down = time.monotonic() - t1
        if self._stopping.is_set():
            return  # the campaign is stopping (an interrupt, or another slot's lab broke): not finished, resumable
        wall = time.monotonic() - t0
        self._await(self._record(slot, lambda r: r.trial_finished(trial, run, outcome, wall)))
        self.timings.append(Timing(trial.trial, trial.fault, outcome, up, scenario or wall - up - down, down))
        self.watcher.trial_finished(trial, run, outcome, wall)

    async def _watch(self, slot: CampaignLab, run: str, trial: PlannedTrial) -> str:
        """Follow the trial's run until ``run.finished``; with noise, add the burst right after the fault."""
        bus = await Bus.connect(BusSettings(nats_url=slot.url_for("operator")), source=SOURCE, ensure_stream=False)
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
                    await self._inject_noise(bus, self.campaign.noise_fault, slot.command_scope)
            finished = await events.wait_for(lambda e: isinstance(e.data, RunFinished), timeout, "run.finished")
            assert isinstance(finished.data, RunFinished)
            return finished.data.outcome
        except TimeoutError:
            return f"timeout: the run did not finish within {timeout:.0f}s"
        finally:
            await replay.stop()
            await bus.close()

    async def _inject_noise(self, bus: Bus, kind: str, scope: str | None) -> None:
        """The control fault beside the real one, on a target the real fault does not hold."""
        targets: list[str | None] = [None]
        with contextlib.suppress(CommandError, TimeoutError):
            targets += [t for t in (await request(bus.nc, "chaos", "list", timeout=5.0, scope=scope)).get("targets", [])
                        if isinstance(t, str)]
        reasons = []
        for target in targets:
            try:
                await request(bus.nc, "chaos", "inject", {"kind": kind, "target": target}, timeout=10.0, scope=scope)
                return
            except CommandError as exc:
                reasons.append(exc.description)
        self.watcher.note(f"the noise ({kind}) could not be injected: {reasons[-1] if reasons else 'no target'}")

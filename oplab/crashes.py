"""Crash trials: an auto-mode run with one service SIGKILLed at a chosen moment, then judged.

A trial starts a stack for one run (``oplab up``'s own path), waits for its *window* - an
event in the log (the director announcing the inject chapter, chaos recording an injection,
an agent asking for a remedy, a ticket opened, a violation recorded) or, for a random trial,
a random moment after ``run.started`` - and sends SIGKILL to the window's service: no cleanup
runs. supervisord restarts it. When the run has finished the log is judged:

- the run finished, with its fault injected, and ended as it should (resolved, or for a
  control fault no action);
- every ticket of the run is terminal (resolved or escalated), as the run's ticket fold
  (:class:`~projections.run_tickets.RunTickets`) ends it: a reopened ticket is open again;
- every injected fault was reverted exactly once;
- no event id appears twice;
- the ticket view the projector kept equals a fold of the log from scratch;
- the killed service came back (``svc.started`` after the kill).

Each failed check is a *problem* of the trial, in words. ``bench/crash_campaign.py`` runs many
seeded trials and prints the figures; ``tests/oplab/test_crashes.py`` runs one of each window.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from events import Event
from events.bus import Bus
from events.settings import BusSettings
from events.subjects import run_domain
from events.waiting import WaitTimeout, wait_until
from oplab.nats_auth import ADMIN
from oplab.run_log import RunLog, follow_run
from oplab.settings import LabSettings
from oplab.stack import Stack, StackInfo
from oplab.supervisor import SERVICES, Supervisor
from projections.run_fold import RunFold
from projections.run_tickets import RunTickets
from projections.ticket_log import (
    POPOTicketLogView,
    TicketLogFeeder,
    TicketLogProjection,
    TicketLogSettings,
    catch_up,
    open_ticket_log,
)
from services.director.scenario import load_scenario
from subjects.registry import DEFAULT_SUBJECT, load_subject
from tickets.state import TERMINAL

Trigger = Callable[[Event], bool]


@dataclass(frozen=True)
class Window:
    """When to kill which service: once ``trigger`` matches an event of the run."""

    service: str
    trigger: Trigger
    incident_only: bool = True  # a control fault never opens a ticket nor asks for a remedy


WINDOWS: dict[str, Window] = {
    "director_in_inject_countdown": Window(
        "director", lambda e: e.type == "director.chapter_started" and e.data.chapter == "inject",
        incident_only=False),
    "chaos_right_after_injection": Window("chaos", lambda e: e.type == "chaos.fault_injected", incident_only=False),
    "agent_mid_remedy": Window("agent", lambda e: e.type == "ticket.action_requested"),
    "projector_mid_batch": Window("projector", lambda e: e.type == "ticket.opened"),
    "monitor_between_violation_and_ticket": Window("monitor", lambda e: e.type == "inv.violated"),
}
RANDOM = "random"
GOOD_OUTCOMES = ("resolved", "no_action")
"""How a run ends that a crash did not spoil: the agent fixed the fault, or (a control) nobody acted."""


@dataclass
class Trial:
    number: int
    fault: str
    window: str
    service: str
    delay_s: float = 0.0  # a random trial's moment after run.started


@dataclass
class TrialResult:
    trial: Trial
    run: str = ""
    outcome: str | None = None
    killed: bool = False
    problems: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def survived(self) -> bool:
        return self.killed and not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self.trial), "run": self.run, "outcome": self.outcome, "killed": self.killed,
                "survived": self.survived, "problems": self.problems, "duration_s": round(self.duration_s, 2)}


def plan(trials: int, seed: int, subject: str = DEFAULT_SUBJECT) -> list[Trial]:
    """``trials`` seeded trials: every targeted window once first, then random kills."""
    rng = random.Random(seed)
    faults = load_scenario(None, load_subject(subject)).faults  # the scenario says which are controls
    everything = list(faults)
    incident = [kind for kind, spec in faults.items() if not spec.control] or everything
    planned: list[Trial] = []
    for name, window in WINDOWS.items():
        if len(planned) == trials:
            return planned
        pool = incident if window.incident_only else everything
        planned.append(Trial(len(planned) + 1, rng.choice(pool), name, window.service))
    while len(planned) < trials:
        planned.append(Trial(len(planned) + 1, rng.choice(everything), RANDOM, rng.choice(SERVICES),
                             round(rng.uniform(0.0, 6.0), 2)))
    return planned


def brisk_scenario(subject: str, directory: Path, countdown_s: float = 0.0) -> Path:
    """``subject``'s shipped scenario without its presentation pauses: countdowns cut to
    ``countdown_s``, and chapters that only show something (no condition) 0.2 s. Every condition,
    its deadline and the control run's watch window are the shipped ones. Returns the file."""
    doc = yaml.safe_load(next(iter(load_subject(subject).scenarios().values())).read_text())
    for chapter in doc["chapters"]:
        if "countdown_s" in chapter:
            chapter["countdown_s"] = min(chapter["countdown_s"], countdown_s)
            if not chapter["countdown_s"]:
                del chapter["countdown_s"]
        advance = chapter.setdefault("advance", {})
        if "when" not in advance and chapter.get("plays_for") != "control":
            advance["timeout_s"] = 0.2
    path = directory / f"{subject}-brisk.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_trial(trial: Trial, settings: LabSettings, *, run_timeout_s: float = 120.0,
              subject: str = DEFAULT_SUBJECT) -> TrialResult:
    """Play one trial on a stack of its own (brought down at the end, whatever happens)."""
    started = time.monotonic()
    result = TrialResult(trial)
    stack = Stack(settings)
    try:
        info = stack.up(fault=trial.fault, mode="auto", subject=subject)
        result.run = info.run
        asyncio.run(_play(trial, stack, info, result, run_timeout_s))
    except Exception as exc:  # a trial that cannot even run is a problem of the lab, reported
        result.problems.append(f"the trial failed to run: {exc!r}")
    finally:
        stack.down()
        result.duration_s = time.monotonic() - started
    return result


async def _play(trial: Trial, stack: Stack, info: StackInfo, result: TrialResult, run_timeout_s: float) -> None:
    bus = await Bus.connect(BusSettings(nats_url=stack.nats_url(info, ADMIN)), source="crash-trial",
                            ensure_stream=False)
    log, replay = await follow_run(bus, info.run)

    async def seen(predicate: Trigger, timeout: float) -> Event | None:
        try:
            return await log.wait_for(predicate, timeout, "it")
        except TimeoutError:
            return None

    try:
        if trial.window == RANDOM:
            trigger: Trigger = lambda e: e.type == "run.started"  # noqa: E731 - a predicate, like the windows'
        else:
            trigger = WINDOWS[trial.window].trigger
        moment = await seen(lambda e: trigger(e) or e.type == "run.finished", run_timeout_s)
        if moment is not None and moment.type != "run.finished":
            if trial.delay_s:
                await asyncio.sleep(trial.delay_s)  # the trial's random moment: a timer, not a sync
            kill_seq = log.events[-1][0]
            await asyncio.to_thread(Supervisor(info.supervisor_url).signal, trial.service, "KILL")
            result.killed = True
        else:
            result.problems.append(f"the window {trial.window} never came (nothing was killed)")
            kill_seq = 0
        finished = await seen(lambda e: e.type == "run.finished", run_timeout_s)
        if finished is None:
            result.problems.append(f"the run did not finish within {run_timeout_s:.0f}s")
        else:
            result.outcome = finished.data.outcome
        if result.killed:
            back = await seen(lambda e: e.type == "svc.started" and e.data.service == trial.service
                              and log.seq_of(e) > kill_seq, 30)
            if back is None:
                result.problems.append(f"{trial.service} did not come back after the kill")
        result.problems += _judge([e for _, e in log.events])
        result.problems += await _view_matches_a_rebuild(bus, stack, info, log)
    finally:
        await replay.stop()
        await bus.close()


def _judge(events: list[Event]) -> list[str]:
    """What a run's log says went wrong after a crash (see the module doc)."""
    problems = []
    ids = [e.id for e in events]
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} event id(s) stored twice")
    injected = [e.data.fault_id for e in events if e.type == "chaos.fault_injected"]
    if not injected:
        problems.append("no fault was injected")
    reverts = [e.data.fault_id for e in events if e.type == "chaos.fault_reverted"]
    for fault_id in injected:
        if reverts.count(fault_id) != 1:
            problems.append(f"fault {fault_id} reverted {reverts.count(fault_id)} times (once expected)")
    left_open = [t.ticket_id for t in _tickets(events).by_id.values() if t.status not in TERMINAL]
    if left_open:
        problems.append(f"ticket(s) left open: {', '.join(sorted(left_open))}")
    for finished in (e.data for e in events if e.type == "run.finished"):
        if finished.summary.get("ended"):
            problems.append(f"the story ended early: {finished.summary['ended']}")
        elif finished.outcome not in GOOD_OUTCOMES:
            problems.append(f"the run ended {finished.outcome}")
    return problems


def _tickets(events: list[Event]) -> RunTickets[None]:
    """The run's tickets as the run's judges fold them (opened, resolved, escalated, reopened)."""
    tickets: RunTickets[None] = RunTickets()
    fold = RunFold()
    fold.handlers |= tickets.handlers
    for event in events:
        fold.apply(event)
    return tickets


async def _view_matches_a_rebuild(bus: Bus, stack: Stack, info: StackInfo, log: RunLog) -> list[str]:
    """The projector's ticket view (once it has caught up with the run) equals a fold from scratch."""
    last_ticket_seq = max((seq for seq, e in log.events if e.domain == "ticket"), default=0)
    settings = TicketLogSettings(home=stack.home)
    view = open_ticket_log(settings)
    try:
        try:  # another process's view: polled (every 0.1 s) under a deadline
            await wait_until(lambda: view.tracked() >= last_ticket_seq, timeout=20, interval=0.1,
                             what="the ticket view to catch up")
        except WaitTimeout:
            return [f"the ticket view stayed behind the log (at {view.tracked()}, log at {last_ticket_seq})"]
        kept = view.list_tickets(run=info.run, status=None, limit=10_000)
    finally:
        view.close()
    scratch = POPOTicketLogView()
    await catch_up(bus, TicketLogFeeder(TicketLogProjection(scratch)), filter_subject=run_domain(info.run, "ticket"))
    rebuilt = scratch.list_tickets(run=info.run, status=None, limit=10_000)
    if [t.model_dump() for t in kept] != [t.model_dump() for t in rebuilt]:
        return [f"the ticket view differs from a rebuild ({len(kept)} vs {len(rebuilt)} tickets)"]
    return []

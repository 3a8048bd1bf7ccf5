"""The lab a campaign runs on: NATS and the subject's infrastructure started once, each trial's
processes started and stopped around it.

:class:`CampaignLab` starts supervisord, the embedded NATS (unless ``NATS_URL``) and the subject's
*infrastructure* once: the processes its provisioner marks ``restart_on_crash`` (the rate
limiter's valkey), which no fault kills and whose state every run keeps apart (the rate limiter's
key prefix is per run). Every trial is a new run: its id, the subject's other processes (the
nodes) and the lab's services are new, started at once (the services with the subject's first
stage of processes: the monitor judges nothing before it has seen the subject whole) and stopped
at once at the end (faults reverted first). Nothing of a trial survives into the next but the
infrastructure, so each trial starts clean: a new key prefix, new processes, a new run in the log.

Ports are handed out once and replayed for every trial (:class:`ReplayedPorts`): the provisioner
plans the same infrastructure command each time, and the lab checks it did - a subject whose
infrastructure changes between runs is refused with the reason.

Parallel trials run in *slots*: the first slot is the lab above; each further one
(:meth:`CampaignLab.slot`) is a lab of its own in ``<home>/slots/<k>/`` - its own supervisord, its
own subject infrastructure (a Redis fault in one slot must not touch another's trial), its own
trial processes - on the first slot's NATS, so every trial is a run in the one log. A slot's chaos
and director answer commands in the slot's scope (:func:`events.subjects.command`), so the
campaign's commands reach the slot's own run only. The ticket-log projector runs in the first
slot only: it folds every run of the log, and the trials need none of it.

The programs change per trial through supervisord's own reload (``reloadConfig``, then
``removeProcessGroup``/``addProcessGroup`` for what changed: ``supervisorctl update``), so one
supervisord serves the whole campaign (per slot); each slot's ``stack.json`` (``<home>/stack.json``
for the first) always describes its current trial, so ``oplab status``, ``oplab logs`` and
``oplab down`` work during a campaign.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from events import new_run_id
from oplab.infra import free_port
from oplab.lab_bus import create_stream, ensure_stream, revert_all, wait_services_ready
from oplab.nats_auth import ADMIN, LabCredentials, write_private
from oplab.probes import healthy, listening, pid_alive, read_pid, redacted, wait_for
from oplab.settings import LabSettings
from oplab.stack import CHILD_STACKS, Progress, Stack
from oplab.stack_info import StackError, StackInfo
from oplab.stack_plan import nats_programs
from oplab.supervisor import (
    SERVICES,
    Program,
    Supervisor,
    SupervisorError,
    SupervisorFault,
    render_config,
    supervisord_binary,
)
from subjects.contract import Deployment, LocalProcess, Site
from subjects.registry import load_subject

MARKER = "campaign.json"
"""``<home>/campaign.json``: which campaign the running stack belongs to (a resume takes it down)."""
SUBJECT_STOP_S = 3
"""A trial's subject processes get this long to stop after SIGTERM: the run is over and its faults
reverted, and their state is per run, so nothing is lost by not waiting for idle connections."""
STOPPED = {"STOPPED", "EXITED", "FATAL", "BACKOFF"}


class ReplayedPorts:
    """``Site.free_port`` for a campaign: free ports on the first plan, the same ones in the same
    order on every later plan (:meth:`rewind` before each)."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self._next = 0

    def rewind(self) -> None:
        self._next = 0

    def __call__(self) -> int:
        if self._next == len(self.ports):
            self.ports.append(free_port())
        port = self.ports[self._next]
        self._next += 1
        return port


class CampaignLab:
    """One supervisord and the subject's infrastructure (and, in the first slot, NATS) for a campaign;
    a fresh run per trial (module doc)."""

    def __init__(self, settings: LabSettings, subject: str, campaign_id: str,
                 progress: Progress = lambda _: None, *, host: CampaignLab | None = None, slot: int = 0) -> None:
        self.host = host
        self.slot_number = slot
        if host is not None:  # a further slot: its own home, supervisord and infrastructure, the host's NATS
            settings = settings.model_copy(update={"home": host.home / CHILD_STACKS / str(slot)})
        self.settings = settings
        self.stack = Stack(settings)
        self.home = self.stack.home
        self.subject = load_subject(subject)
        self.campaign_id = campaign_id
        self.progress = progress
        self.ports = ReplayedPorts()
        self.supervisor_url = ""
        self.nats_url = host.nats_url if host is not None else settings.nats_url or ""
        self.embedded = host.embedded if host is not None else settings.nats_url is None
        self.command_scope = f"slot{slot}" if host is not None else None
        self.services = SERVICES if host is None else tuple(s for s in SERVICES if s != "projector")
        self.infrastructure: dict[str, LocalProcess] = {}
        self.current: StackInfo | None = None
        self._programs: dict[str, Program] = {}  # what supervisord.conf holds now
        self._trial_programs: list[str] = []

    def slot(self, number: int) -> CampaignLab:
        """Slot ``number`` (1, 2, ...) for parallel trials, on this lab's NATS (module doc); open it
        after this one."""
        return CampaignLab(self.settings, self.subject.name, self.campaign_id, self.progress, host=self,
                           slot=number)

    # -- the campaign's lab -------------------------------------------------------------

    def open(self) -> None:
        """Start supervisord, NATS and the subject's infrastructure."""
        if self.stack.running():
            info = self.stack.info()
            raise StackError(f"a stack is already running here (run {info.run if info else '?'}): "
                             "`oplab down` first")
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        supervisor_url = f"http://lab:{_token()}@127.0.0.1:{free_port()}"
        if self.runs_nats:
            self.stack.stop_reader_servers(self.progress)  # one server per store: a reader's must go first
            self.nats_url = f"nats://127.0.0.1:{free_port()}"
            LabCredentials.create(self.home)
        elif self.host is not None and self.embedded:  # the host's users, so `oplab down` of the slot can revert
            write_private(self.home / LabCredentials.FILE, (self.host.home / LabCredentials.FILE).read_text())
        deployment = self._deployment(new_run_id(), supervisor_url)
        if deployment.compose is not None:
            raise StackError(f"subject {self.subject.name} runs as a Docker Compose project: campaigns run "
                             "subjects whose processes the lab starts itself (run its trials with `oplab demo`)")
        self.infrastructure = {p.name: p for p in deployment.processes if p.restart_on_crash}
        if self.host is not None and not self.infrastructure:
            raise StackError(f"subject {self.subject.name} starts no infrastructure of its own here (it uses an "
                             "external one, e.g. REDIS_URL): parallel trials would share it, and one trial's "
                             "faults would reach another's; run with --parallel 1")
        programs = self._nats_programs()
        for process in self.infrastructure.values():
            programs.append(Program(process.name, process.command, priority=20 + process.stage, autorestart="true",
                                    environment=dict(deployment.env)))
        self.supervisor_url = supervisor_url
        self._write(programs)
        write_private(self.home / MARKER, json.dumps({"campaign": self.campaign_id,
                                                      "supervisor_url": self.supervisor_url}))
        # stack.json from the start, so `oplab down` can always take the campaign's lab down
        self._save(self._info(new_run_id(), deployment, fault=""))
        where = f" slot {self.slot_number}" if self.host is not None else ""
        self.progress(f"campaign {self.campaign_id}{where}: starting supervisord")
        subprocess.run([supervisord_binary(), "-c", str(self.home / "supervisord.conf")], check=True)
        sup = self.supervisor()
        timeout = self.settings.start_timeout_s
        wait_for(sup.alive, timeout, "supervisord did not come up")
        if self.runs_nats:
            self.progress(f"starting nats-server on {self.nats_url}")
            sup.start("nats")
        wait_for(lambda: listening(self.nats_url.split(",")[0]), timeout,
                 f"NATS at {redacted(self.nats_url)} is not reachable")
        if self.runs_nats:
            asyncio.run(create_stream(self.admin_url, 1, timeout))
        elif self.host is None:  # a NATS of the user's: the campaign's first event comes before any service
            asyncio.run(ensure_stream(self.admin_url))
        for stage in _stages(list(self.infrastructure.values())):
            self.progress(f"starting {', '.join(p.name for p in stage)}")
            self._start_together(sup, stage)

    def supervisor(self) -> Supervisor:
        return Supervisor(self.supervisor_url, self.settings.supervisor_timeout_s)

    @property
    def runs_nats(self) -> bool:
        """Whether this lab's supervisord runs the embedded NATS (the first slot, without ``NATS_URL``)."""
        return self.embedded and self.host is None

    @property
    def admin_url(self) -> str:
        return self.url_for(ADMIN)

    def url_for(self, role: str) -> str:
        """The lab's NATS URL as ``role`` (with its user where the lab runs its own NATS)."""
        credentials = LabCredentials.load(self.home) if self.embedded else None
        return self.nats_url if credentials is None else credentials.url(self.nats_url, role)

    def close(self) -> None:
        """Take the lab down: the current trial's faults reverted and its processes stopped
        (:meth:`end_trial`), then supervisord with the infrastructure and NATS."""
        if self.current is not None or self._trial_programs:
            with contextlib.suppress(Exception):  # the shutdown below stops whatever is left
                self.end_trial()
        if not self.supervisor_url:
            return  # never opened (another stack runs here, say): nothing of ours to take down
        sup = self.supervisor()
        if sup.alive():
            # everything at once, NATS last; stopped here because supervisord's own shutdown takes
            # seconds more per program group once groups were removed and added under it
            self._stop_all(sup, [name for name in self._programs if name != "nats"])
            self._stop_all(sup, ["nats"])
            pid = read_pid(self.home / "supervisord.pid")
            with contextlib.suppress(SupervisorError):  # it may close the connection as it goes
                sup.shutdown()
            if pid is not None:
                wait_for(lambda: not pid_alive(pid), 60.0, "supervisord did not exit")
        with contextlib.suppress(FileNotFoundError):
            (self.home / MARKER).unlink()

    # -- trials -------------------------------------------------------------------------

    def start_trial(self, *, run: str, fault: str, scenario: Path, agent_env: dict[str, str],
                    seed: int | None = None,
                    wait: Callable[[Coroutine[Any, Any, set[str]]], set[str]] = asyncio.run) -> StackInfo:
        """Start run ``run`` of ``fault``: the subject's processes (stage by stage, each stage at once),
        then every service at once; returns once every service reported ready. ``seed`` goes to every
        process as ``OPLAB_SEED``, for the subject's randomness (its workload, the targets it picks).
        ``wait`` runs the wait for readiness (a campaign passes one it can cancel on Ctrl-C)."""
        deployment = self._deployment(run)
        changed = [p.name for p in deployment.processes if p.restart_on_crash
                   and (p.name not in self.infrastructure or p.command != self.infrastructure[p.name].command)]
        if changed:
            raise StackError(f"subject {self.subject.name} plans its infrastructure ({', '.join(changed)}) "
                             "differently for each run; a campaign cannot share it")
        info = self._info(run, deployment, fault=fault)
        env = {**self.stack.service_env(info), "OPLAB_SCENARIO": str(scenario)}
        if seed is not None:
            env["OPLAB_SEED"] = str(seed)
        credentials = LabCredentials.load(self.home) if self.embedded else None
        trial: list[Program] = []
        subject_processes = [p for p in deployment.processes if not p.restart_on_crash]
        for process in subject_processes:
            trial.append(Program(process.name, process.command, priority=30 + process.stage, autorestart="false",
                                 stopwaitsecs=SUBJECT_STOP_S, environment=env))
        for priority, service in enumerate(self.services, start=50):
            service_env = {**env, **(agent_env if service == "agent" else {})}
            if credentials is not None:
                service_env |= {"OPLAB_NATS_USER": service, "OPLAB_NATS_PASSWORD": credentials.passwords[service]}
            trial.append(Program(service, [sys.executable, "-m", f"services.{service}"], priority=priority,
                                 environment=service_env))
        sup = self.supervisor()
        self._apply([*self._infrastructure_programs(), *trial])
        self._trial_programs = [p.name for p in trial]
        self._save(info)
        started_at = time.time()
        # the services start with the subject's processes, not after them: the monitor judges nothing
        # before it has seen the subject whole (and forgets what it saw before), and the director
        # injects nothing before that baseline - so a trial is up in the time of its slowest process
        stages = _stages(subject_processes)
        first = stages[0] if stages else []
        self._start_together(sup, first, names=[*(p.name for p in first), *self.services])
        for stage in stages[1:]:
            self._start_together(sup, stage)
        timeout = self.settings.start_timeout_s
        missing = wait(wait_services_ready(run, self.admin_url, 1, set(self.services), timeout,
                                           since=started_at - 1))
        if missing:
            raise StackError(f"not ready within {timeout:.0f}s: {', '.join(sorted(missing))}; "
                             f"see {self.home / 'logs'}")
        self.current = info
        return info

    def end_trial(self) -> None:
        """Revert the trial's faults, then stop its processes, all at once."""
        if self.current is not None or self._trial_programs:
            # the director's summary reverts every fault; this covers a run cut short - also one cut
            # short before all its services were ready (its director may have injected already, on
            # infrastructure the next trial shares, whose chaos adopts only its own run's faults). Best effort:
            # the trial's processes stop anyway, and a chaos service that does not answer has nothing to say
            with contextlib.suppress(Exception):
                asyncio.run(revert_all(self.url_for("operator"), 10.0, self.command_scope))
        self.stop_trial_programs()
        self.current = None
        self._trial_programs = []

    def stop_trial_programs(self) -> None:
        """SIGTERM every program of the trial at once and wait until all have stopped."""
        self._stop_all(self.supervisor(), self._trial_programs)

    @staticmethod
    def _stop_all(sup: Supervisor, programs: list[str]) -> None:
        names = [p["name"] for p in sup.processes() if p["name"] in programs and p["statename"] not in STOPPED]
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            list(pool.map(sup.stop, names))

    # -- helpers -----------------------------------------------------------------------

    def _deployment(self, run: str, supervisor_url: str | None = None) -> Deployment:
        self.ports.rewind()
        site = Site(run=run, home=self.home, python=sys.executable,
                    supervisor_url=supervisor_url or self.supervisor_url, free_port=self.ports)
        try:
            return self.subject.provisioner().plan(site)
        except ValueError as exc:
            raise StackError(f"subject {self.subject.name} cannot be deployed: {exc}") from None

    def _info(self, run: str, deployment: Deployment, *, fault: str) -> StackInfo:
        return StackInfo(run=run, subject=self.subject.name, nats_url=self.nats_url,
                         supervisor_url=self.supervisor_url, fault=fault, mode="auto", embedded_nats=self.embedded,
                         started_at=time.time(), subject_env=dict(deployment.env), endpoints=dict(deployment.endpoints),
                         command_scope=self.command_scope)

    def _save(self, info: StackInfo) -> None:
        info.save(self.settings.stack_file)

    def _nats_programs(self) -> list[Program]:
        """The embedded NATS (one server) when this lab runs it; none on a slot or an external NATS."""
        return nats_programs(self.home, self.nats_url, LabCredentials.load(self.home)) if self.runs_nats else []

    def _infrastructure_programs(self) -> list[Program]:
        return [p for name, p in self._programs.items() if name == "nats" or name in self.infrastructure]

    def _write(self, programs: list[Program]) -> None:
        self._programs = {p.name: p for p in programs}
        write_private(self.home / "supervisord.conf", render_config(self.home, self.supervisor_url, programs))

    def _apply(self, programs: list[Program]) -> None:
        """Rewrite supervisord.conf and apply it: changed and removed programs go (they are stopped),
        changed and added ones come in; the infrastructure, unchanged, keeps running."""
        self._write(programs)
        sup = self.supervisor()
        added, changed, removed = sup.reload_config()
        for name in [*changed, *removed]:
            with contextlib.suppress(SupervisorFault):  # already stopped, or already gone
                sup.stop_group(name)
            sup.remove_group(name)
        for name in [*changed, *added]:
            sup.add_group(name)

    def _start_together(self, sup: Supervisor, processes: list[LocalProcess], names: list[str] | None = None) -> None:
        """Start these programs at once, then wait for each one's health check."""
        names = names if names is not None else [p.name for p in processes]
        for name in names:
            sup.start(name, wait=False)
        timeout = self.settings.start_timeout_s
        for process in processes:
            if process.health is not None:
                wait_for(lambda h=process.health: healthy(h), timeout,
                         f"{process.name} did not become ready ({redacted(process.health.url)}); "
                         f"see {self.home / 'logs' / (process.name + '.log')}")


def _stages(processes: list[LocalProcess]) -> list[list[LocalProcess]]:
    stages: dict[int, list[LocalProcess]] = {}
    for p in processes:
        stages.setdefault(p.stage, []).append(p)
    return [stages[s] for s in sorted(stages)]


def _token() -> str:
    import secrets

    return secrets.token_urlsafe(16)


def campaign_of_running_stack(home: Path) -> str | None:
    """The campaign whose lab is running in ``home`` (left by a campaign process that was killed), or None."""
    try:
        doc = json.loads((home / MARKER).read_text())
    except (FileNotFoundError, ValueError):
        return None
    campaign = doc.get("campaign") if isinstance(doc, dict) else None
    return campaign if isinstance(campaign, str) else None

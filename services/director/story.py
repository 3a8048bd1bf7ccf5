"""What the director knows of its run: a fold of the log, its memory across restarts.

:class:`Story` folds the run's story domains (services, the run, the director's own chapters, faults,
violations, tickets) as the director's feed delivers them, dispatching on the payload type. It does
no I/O: the director reads its fields and awaits its events (``services_ready``, ``baseline``,
``lost_event``, ``leases_changed``) to decide when to move on.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime

from events import (
    ActionTaken,
    BaselineEstablished,
    ChapterFinished,
    ChapterStarted,
    FaultFailed,
    FaultInjected,
    FaultRequested,
    FaultReverted,
    RunFinished,
    RunStarted,
    ServiceStarted,
    TicketClaimed,
    TicketEscalated,
    TicketLeaseRenewed,
    TicketReopened,
    TicketResolved,
)
from events.envelope import Payload
from events.replay import Delivered
from projections.faults import FaultFold
from projections.incident_verdict import IncidentFold


class Story:
    """The run as the log tells it so far (module doc).

    ``scenario``: the scenario's name (its chapters' events are ours); ``requires_services``: the
    services the story waits for; ``control``: the run's fault breaks nothing (its revert ends no
    story); ``may_end``: whether losing the fault may still end the story (not once the last chapter
    plays)."""

    def __init__(self, scenario: str, requires_services: list[str], *, control: bool,
                 may_end: Callable[[], bool]) -> None:
        self.scenario = scenario
        self.requires_services = set(requires_services)
        self.control = control
        self.may_end = may_end
        self.services_up: set[str] = set()
        self.services_ready = asyncio.Event()
        self.run_started = False
        self.run_finished = False
        self.last_started: int | None = None  # index of the last chapter_started in the log
        self.last_finished: int | None = None  # index of the last chapter_finished in the log
        self.last_finished_seq = 0  # ... and its stream sequence
        self.first_started: dict[int, datetime] = {}  # chapter -> time of its first chapter_started
        self.actions_done: dict[int, set[int]] = {}  # chapter -> positions of its entry actions done
        self.run_fault_id: str | None = None  # the first fault requested in the run: the story's
        self.run_fault_kind: str | None = None  # the kind the run plays (run.started)
        self.fault_seq = 0  # sequence of the run's first chaos.fault_injected
        self._incident = IncidentFold()  # the run's incident, as its summary and its score judge it
        self._faults = FaultFold()  # every fault's life, by the one rule of what is in effect
        self.leases: dict[str, datetime] = {}  # ticket -> lease_until, while an agent works it
        self.leases_changed = asyncio.Event()
        self.baseline = asyncio.Event()  # the monitor has begun judging (inv.baseline)
        self.lost: str | None = None  # why the story's fault is gone before anyone detected it
        self.lost_event = asyncio.Event()

    @property
    def run_ticket(self) -> str | None:
        """The run's incident ticket as the log tells it so far: the first ticket opened (by its
        ``ticket.opened`` time) at or after the injection of the run's fault (the first of the kind
        the run plays, else the first) - the one the run summary and the trial score judge
        (:mod:`projections.incident_verdict`); None before it is opened."""
        ticket = self._incident.incident_ticket(self.run_fault_kind)
        return ticket.ticket_id if ticket is not None else None

    def lose(self, why: str) -> None:
        """The story's fault is gone: if nobody has detected it yet, the story ends (see the director)."""
        if self.run_ticket is None and self.lost is None and self.may_end():
            self.lost = why
            self.lost_event.set()

    def note(self, data: Payload, d: Delivered) -> None:
        """Fold one event of the run (most types change nothing)."""
        self._incident.apply(d.event)
        self._faults.apply(d.event)
        self._note(data, d)

    @functools.singledispatchmethod
    def _note(self, data: Payload, d: Delivered) -> None:
        """The story's own fold of one event, by its payload type."""

    @_note.register
    def _service_started(self, data: ServiceStarted, d: Delivered) -> None:
        self.services_up.add(data.service)
        if self.requires_services <= self.services_up:
            self.services_ready.set()

    @_note.register
    def _run_started(self, data: RunStarted, d: Delivered) -> None:
        self.run_started = True
        self.run_fault_kind = data.fault

    @_note.register
    def _run_finished(self, data: RunFinished, d: Delivered) -> None:
        self.run_finished = True

    @_note.register
    def _chapter_started(self, data: ChapterStarted, d: Delivered) -> None:
        if data.scenario == self.scenario:
            self.last_started = data.index
            self.first_started.setdefault(data.index, d.event.time)

    @_note.register
    def _chapter_finished(self, data: ChapterFinished, d: Delivered) -> None:
        if data.scenario == self.scenario:
            self.last_finished, self.last_finished_seq = data.index, d.seq

    @_note.register
    def _action_taken(self, data: ActionTaken, d: Delivered) -> None:
        if data.scenario == self.scenario:
            self.actions_done.setdefault(data.index, set()).add(data.action)

    @_note.register
    def _fault_requested(self, data: FaultRequested, d: Delivered) -> None:
        if self.run_fault_id is None:
            self.run_fault_id = data.fault_id

    @_note.register
    def _fault_injected(self, data: FaultInjected, d: Delivered) -> None:
        if not self.fault_seq:
            self.fault_seq = d.seq

    @_note.register
    def _fault_failed(self, data: FaultFailed, d: Delivered) -> None:
        life = self._faults.faults.get(data.fault_id)
        # a failed inject after its fault_injected leaves the fault in effect until its revert
        # (projections.faults): that revert, not this failure, ends the story
        if data.fault_id == self.run_fault_id and data.stage == "inject" and not (life and life.injected):
            self.lose(f"the fault could not be injected ({data.reason})")

    @_note.register
    def _fault_reverted(self, data: FaultReverted, d: Delivered) -> None:
        # the lab going down is not the story's business
        if data.fault_id == self.run_fault_id and not self.control and data.reason != "shutdown":
            self.lose(f"the fault was reverted ({data.reason}) before anyone detected it")

    @_note.register
    def _baseline_established(self, data: BaselineEstablished, d: Delivered) -> None:
        self.baseline.set()

    @_note.register
    def _lease_taken(self, data: TicketClaimed | TicketLeaseRenewed, d: Delivered) -> None:
        self.leases[data.ticket_id] = data.lease_until
        self.leases_changed.set()

    @_note.register
    def _lease_ended(self, data: TicketResolved | TicketEscalated | TicketReopened, d: Delivered) -> None:
        self.leases.pop(data.ticket_id, None)
        self.leases_changed.set()

"""What the director's tests share: a director child process, the test's run as they drive it
(``DirectedRun``), stand-ins for the chaos service it commands, the scenarios they play and the small
facts they publish.

The fixtures that give these (``director``, ``run``, ``chaos_stand_in``, ``chaos_injects``) are in
``tests/services/conftest.py``.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from events import Event, FaultInjected, FaultRequested, TicketOpened, new_event, new_fault_id, new_ticket_id
from events.bus import Bus
from events.commands import request
from events.envelope import utcnow
from events.waiting import WaitTimeout, wait_until
from oplab.run_log import RunLog

# What every test scenario shares: the rate limiter, with its one fault node_kill (the default).
HEAD = """\
name: {name}
subject: ratelimiter
default_fault: node_kill
faults:
  node_kill: {{title: a test fault}}
"""


def scenario(name: str, chapters: str, *, requires_services: str = "") -> str:
    """The text of test scenario ``name`` (``HEAD``), told in ``chapters`` (the YAML list under
    ``chapters:``); ``requires_services``: the YAML list of services the story waits for, if any."""
    requires = f"requires_services: {requires_services}\n" if requires_services else ""
    return f"{HEAD.format(name=name)}{requires}chapters:\n{chapters}"


# The director fixture's default: a ticket, the agent's fix (its entry reverts all), a pause, the end.
SCENARIO = scenario("director-test", """\
  - id: opening
    title: Opening
    narration: Waiting for a ticket.
    advance: {when: {type: ticket.opened}, timeout_s: 30}
  - id: fixed
    title: Fixed
    narration: Waiting for the agent's fix.
    on_enter: [{action: revert_all}]
    advance: {when: {type: ticket.resolved, where: {by: agent}, after_fault: true}, timeout_s: 30}
  - id: pause
    title: Pause
    narration: A short pause.
    advance: {timeout_s: 0.3}
  - id: end
    title: End
    narration: "{summary}"
    on_enter: [{action: finish}]
    advance: {timeout_s: 0.1}
""")

# An injection after a 1.5 s countdown (request id ``<run>/director-inject-test/0/0``), then the run's ticket.
INJECTING = scenario("director-inject-test", """\
  - id: inject
    title: Breaking it
    narration: A countdown, then the injection.
    countdown_s: 1.5
    on_enter: [{action: inject, kind: "{fault}", ttl_s: 60}]
    advance: {when: {type: ticket.opened, after_fault: true}, timeout_s: 30}
  - id: detection
    title: Detection
    narration: Waiting for the fix.
    advance: {when: {type: ticket.resolved, run_ticket: true}, timeout_s: 30}
  - id: end
    title: End
    narration: "{summary}"
    on_enter: [{action: finish}]
    advance: {timeout_s: 0.1}
""")


class Director:
    """One director child process (``python -m services.director``); its events carry ``source``."""

    def __init__(self, proc: asyncio.subprocess.Process, instance: str) -> None:
        self.proc = proc
        self.instance = instance
        self.source = f"director/{instance}"

    async def terminate(self) -> int:
        """SIGTERM, then its exit status (within 15 s)."""
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 15)

    def owns(self, event: Event) -> bool:
        return event.source == self.source


# A fixture that starts a director: ``await director(mode, instance, scenario_text=SCENARIO)``.
StartDirector = Callable[..., Any]


async def publish(bus: Bus, run: str, data: Any) -> int:
    """Record ``data`` in ``run`` as the tests' own source; its stream sequence."""
    return await bus.publish(new_event(data, run=run, source="tests"))


def ticket_opened() -> TicketOpened:
    """A new ticket for node-1 being down, as the monitor would open it."""
    return TicketOpened(ticket_id=new_ticket_id(), invariant="node_down", entity="node-1", subject="ratelimiter",
                        summary="node-1 is down", first_seen=utcnow())


def fault_injected() -> FaultInjected:
    """A node_kill on node-1 for a minute, as chaos would record it."""
    return FaultInjected(fault_id=new_fault_id(), kind="node_kill", target="node-1",
                         expires_at=utcnow() + timedelta(minutes=1))


class DirectedRun:
    """This test's run as a director test drives it: facts recorded into it as the tests' own source
    (what the monitor, chaos or an agent would record), the directors' events awaited in its ``log``,
    and the running director asked for its status or given the presenter's key.

    Every wait has a deadline: by default 20 s for an event (time for a new director process to
    start) and 10 s for a status."""

    def __init__(self, bus: Bus, run_id: str, log: RunLog) -> None:
        self.bus, self.id, self.log = bus, run_id, log

    async def publish(self, data: Any) -> int:
        """Record ``data`` in this run as the tests' own source; its stream sequence."""
        return await publish(self.bus, self.id, data)

    async def chapter_started(self, index: int, director: Director | None = None, timeout: float = 20) -> Event:
        """The ``director.chapter_started`` of chapter ``index`` (0-based), by ``director`` if given."""
        return await self._chapter("started", index, director, timeout)

    async def chapter_finished(self, index: int, director: Director | None = None, timeout: float = 20) -> Event:
        """The ``director.chapter_finished`` of chapter ``index`` (0-based), by ``director`` if given."""
        return await self._chapter("finished", index, director, timeout)

    async def _chapter(self, kind: str, index: int, director: Director | None, timeout: float) -> Event:
        def match(e: Event) -> bool:
            return (e.type == f"director.chapter_{kind}" and e.data.index == index
                    and (director is None or director.owns(e)))

        by = f" by director {director.instance}" if director is not None else ""
        return await self.log.wait_for(match, timeout, f"chapter {index + 1} {kind}{by}")

    async def recorded_by(self, director: Director, type_name: str, timeout: float = 20) -> Event:
        """The first ``type_name`` event ``director`` recorded (``svc.stopping``, ``director.action_taken``...)."""
        return await self.log.wait_for(lambda e: e.type == type_name and director.owns(e), timeout,
                                       f"{type_name} of director {director.instance}")

    async def status(self, predicate: Callable[[dict[str, Any]], Any], timeout: float = 10.0) -> dict[str, Any]:
        """Ask ``cmd.director.status`` (every 0.05 s) until ``predicate`` holds (deadline ``timeout``)."""
        last: dict[str, Any] = {}

        async def matching() -> dict[str, Any] | None:
            nonlocal last
            last = await request(self.bus.nc, "director", "status", timeout=2.0)
            return last if predicate(last) else None

        try:
            return await wait_until(matching, timeout=timeout, interval=0.05, what="the director's status to match")
        except WaitTimeout as exc:
            exc.add_note(f"last status: {last}")
            raise

    async def next(self) -> None:
        """The presenter's key (``cmd.director.next``)."""
        await request(self.bus.nc, "director", "next")


class ChaosInjectStandIn:
    """Answers ``cmd.chaos.inject`` with a fault and records it in the log as chaos would; records
    every request. ``hold`` keeps the next reply back until released (a requester may die meanwhile)."""

    def __init__(self, bus: Bus, run_id: str) -> None:
        self.bus, self.run_id = bus, run_id
        self.calls: list[dict[str, Any]] = []
        self.received = asyncio.Event()
        self.hold: asyncio.Event | None = None

    async def answer(self, msg) -> None:  # type: ignore[no-untyped-def]
        body = json.loads(msg.data)
        self.calls.append(body)
        self.received.set()
        if self.hold is not None:
            await self.hold.wait()
        fault_id = new_fault_id()
        await publish(self.bus, self.run_id, FaultRequested(fault_id=fault_id, kind=body["kind"], ttl_s=60,
                                                            request_id=body.get("request_id")))
        await publish(self.bus, self.run_id, FaultInjected(fault_id=fault_id, kind=body["kind"], target="node-1",
                                                           expires_at=utcnow() + timedelta(minutes=1)))
        await msg.respond(json.dumps({"fault": {"fault_id": fault_id}}).encode())

"""Scripted ticket lifecycles for the ticket log tests, and the ways the tests feed them to a view.

Each script is the payloads of one ticket's life in order; ``interleave`` mixes several, as tickets
of a run overlap, with heartbeats (events that are no ticket's) between rounds, and ``every_path``
does so for tickets taking each of the three paths in turn. The steps (``opened``, ``claimed``,
``remedied``) build scripts of a test's own. A test publishes scripts under its own run id
(``TicketRun``: real stream sequences) and folds that run's deliveries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from events.bus import Bus
from events.catalogue import svc, ticket
from events.envelope import Payload, utcnow
from events.replay import Delivered
from events.subjects import run_events
from projections.ticket_log import TicketLogFeeder, TicketLogProjection, TicketLogView, catch_up

# -- the steps of a ticket's life ------------------------------------------------------------------


def opened(tid: str, *, invariant: str = "node_down", entity: str = "node-2", summary: str = "",
           evidence: dict[str, Any] | None = None) -> ticket.TicketOpened:
    """The monitor opens ``tid`` on the rate limiter, first seen now (summary: "<entity> is down")."""
    return ticket.TicketOpened(ticket_id=tid, invariant=invariant, entity=entity, subject="ratelimiter",
                               summary=summary or f"{entity} is down", evidence=evidence or {},
                               first_seen=utcnow())


def claimed(tid: str, agent: str = "agent-1", lease_s: float = 30.0) -> ticket.TicketClaimed:
    """``agent`` (the rules policy) claims ``tid`` with a lease of ``lease_s`` from now."""
    return ticket.TicketClaimed(ticket_id=tid, agent=agent, policy="rules",
                                lease_until=utcnow() + timedelta(seconds=lease_s))


def remedied(tid: str) -> list[Payload]:
    """agent-1 diagnoses node-2 as not running, asks for and runs a restart, verifies it, resolves."""
    restart = {"action_id": "x1", "tool": "restart_node", "args": {"node": "node-2"}}
    return [
        ticket.TicketDiagnosed(ticket_id=tid, hypothesis="node-2 process is not running", evidence={}),
        ticket.TicketActionRequested(ticket_id=tid, **restart),
        ticket.TicketActionExecuted(ticket_id=tid, **restart, ok=True, result="started"),
        ticket.TicketVerified(ticket_id=tid, evidence={"cleared": True}),
        ticket.TicketResolved(ticket_id=tid, by="agent", agent="agent-1", note="restarted node-2"),
    ]


def orphan(tid: str) -> ticket.TicketClaimed:
    """A claim of a ticket no ``ticket.opened`` came before: a ticket event the fold cannot apply."""
    return claimed(tid, agent="a", lease_s=0)


# -- whole lives -----------------------------------------------------------------------------------


def happy_path(tid: str) -> list[Payload]:
    """Opened, recurred, claimed, diagnosed, a remedy asked for and run, verified, resolved by the agent."""
    return [
        opened(tid, evidence={"last_seen_s": 4.2}),
        ticket.TicketRecurred(ticket_id=tid, evidence={"last_seen_s": 5.0}),
        claimed(tid),
        *remedied(tid),
    ]


def escalated_path(tid: str) -> list[Payload]:
    """Opened, claimed, escalated by its agent."""
    return [
        opened(tid, invariant="over_limit", entity="key:alice", summary="alice over limit"),
        claimed(tid, agent="agent-2", lease_s=9),
        ticket.TicketEscalated(ticket_id=tid, reason="agent stopping", agent="agent-2"),
    ]


def self_healed_then_reopened(tid: str) -> list[Payload]:
    """Opened, resolved on its own, reopened."""
    return [
        opened(tid, entity="node-1"),
        ticket.TicketResolved(ticket_id=tid, by="self-healed"),
        ticket.TicketReopened(ticket_id=tid, reason="violated again"),
    ]


# The three ways a ticket's life goes in these tests.
PATHS: tuple[Callable[[str], list[Payload]], ...] = (happy_path, escalated_path, self_healed_then_reopened)


def beat(n: int) -> svc.ServiceHeartbeat:
    """A monitor heartbeat: an event that is no ticket's."""
    return svc.ServiceHeartbeat(service="monitor", instance="m1", version="t", pid=n, uptime_s=float(n))


def interleave(*scripts: list[Payload]) -> list[Payload]:
    """Round-robin the scripts (each keeps its own order), a heartbeat after every round."""
    out: list[Payload] = []
    for i in range(max(len(s) for s in scripts)):
        out += [s[i] for s in scripts if i < len(s)]
        out.append(beat(i))
    return out


def every_path(*tids: str) -> list[Payload]:
    """Ticket ``tids[i]`` takes path ``i % 3`` of ``PATHS`` (happy, escalated, self-healed then
    reopened); their lives interleaved."""
    return interleave(*(PATHS[i % len(PATHS)](tid) for i, tid in enumerate(tids)))


# -- feeding a view --------------------------------------------------------------------------------


def feeder_of(view: TicketLogView, **options: Any) -> TicketLogFeeder:
    """A feeder folding into ``view`` through its projection (``options``: the feeder's own)."""
    return TicketLogFeeder(TicketLogProjection(view), **options)


def project(view: TicketLogView, batch: list[Delivered]) -> None:
    """Fold ``batch`` into ``view`` as one projector batch (one transaction)."""
    TicketLogProjection(view).process_batch(batch)


@dataclass(frozen=True)
class TicketRun:
    """A test's run on a bus, as the ticket log tests feed it: scripts are published into it and
    views folded from it (the ``ticket_run`` fixture: this test's run on the session's bus)."""

    bus: Bus
    run: str

    async def publish(self, payloads: list[Payload]) -> list[int]:
        """Record the payloads in the run, in order, as one batch; their stream sequences."""
        return await self.bus.publish_batch([self.bus.event(p, run=self.run) for p in payloads])

    async def deliveries(self) -> list[Delivered]:
        """Every stored event of the run, as the projector receives them."""
        got: list[Delivered] = []

        async def keep(d: Delivered) -> None:
            got.append(d)

        await self.bus.replay(run_events(self.run), keep)
        return got

    async def fold(self, view: TicketLogView, **options: Any) -> int:
        """Catch ``view`` up on the run from its tracked position (``options``: the feeder's); events folded."""
        return await catch_up(self.bus, feeder_of(view, **options), filter_subject=run_events(self.run))

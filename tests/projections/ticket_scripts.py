"""Scripted ticket lifecycles for the ticket log tests, and the ways the tests feed them to a view.

Each script is the payloads of one ticket's life in order; ``interleave`` mixes several, as tickets
of a run overlap, with heartbeats (events that are no ticket's) between rounds. A test publishes
them under its own run id (real stream sequences) and folds that run's deliveries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from events import (
    ServiceHeartbeat,
    TicketActionExecuted,
    TicketActionRequested,
    TicketClaimed,
    TicketDiagnosed,
    TicketEscalated,
    TicketOpened,
    TicketRecurred,
    TicketReopened,
    TicketResolved,
    TicketVerified,
)
from events.bus import Bus
from events.envelope import Payload, utcnow
from events.replay import Delivered
from events.subjects import run_events
from projections.ticket_log import TicketLogFeeder, TicketLogProjection, TicketLogView, catch_up


def happy_path(tid: str) -> list[Payload]:
    """Opened, recurred, claimed, diagnosed, a remedy asked for and run, verified, resolved by the agent."""
    now = utcnow()
    return [
        TicketOpened(ticket_id=tid, invariant="node_down", entity="node-2", subject="ratelimiter",
                     summary="node-2 is down", evidence={"last_seen_s": 4.2}, first_seen=now),
        TicketRecurred(ticket_id=tid, evidence={"last_seen_s": 5.0}),
        TicketClaimed(ticket_id=tid, agent="agent-1", policy="rules", lease_until=now + timedelta(seconds=30)),
        TicketDiagnosed(ticket_id=tid, hypothesis="node-2 process is not running", evidence={}),
        TicketActionRequested(ticket_id=tid, action_id="x1", tool="restart_node", args={"node": "node-2"}),
        TicketActionExecuted(ticket_id=tid, action_id="x1", tool="restart_node", args={"node": "node-2"},
                             ok=True, result="started"),
        TicketVerified(ticket_id=tid, evidence={"cleared": True}),
        TicketResolved(ticket_id=tid, by="agent", agent="agent-1", note="restarted node-2"),
    ]


def escalated_path(tid: str) -> list[Payload]:
    """Opened, claimed, escalated by its agent."""
    now = utcnow()
    return [
        TicketOpened(ticket_id=tid, invariant="over_limit", entity="key:alice", subject="ratelimiter",
                     summary="alice over limit", first_seen=now),
        TicketClaimed(ticket_id=tid, agent="agent-2", policy="rules", lease_until=now + timedelta(seconds=9)),
        TicketEscalated(ticket_id=tid, reason="agent stopping", agent="agent-2"),
    ]


def self_healed_then_reopened(tid: str) -> list[Payload]:
    """Opened, resolved on its own, reopened."""
    return [
        TicketOpened(ticket_id=tid, invariant="node_down", entity="node-1", subject="ratelimiter",
                     summary="node-1 is down", first_seen=utcnow()),
        TicketResolved(ticket_id=tid, by="self-healed"),
        TicketReopened(ticket_id=tid, reason="violated again"),
    ]


def beat(n: int) -> ServiceHeartbeat:
    """A monitor heartbeat: an event that is no ticket's."""
    return ServiceHeartbeat(service="monitor", instance="m1", version="t", pid=n, uptime_s=float(n))


def interleave(*scripts: list[Payload]) -> list[Payload]:
    """Round-robin the scripts (each keeps its own order), a heartbeat after every round."""
    out: list[Payload] = []
    for i in range(max(len(s) for s in scripts)):
        out += [s[i] for s in scripts if i < len(s)]
        out.append(beat(i))
    return out


async def publish(bus: Bus, run: str, payloads: list[Payload]) -> list[int]:
    """Record the payloads in ``run``, in order, as one batch; their stream sequences."""
    return await bus.publish_batch([bus.event(p, run=run) for p in payloads])


async def deliveries(bus: Bus, run: str) -> list[Delivered]:
    """Every stored event of ``run``, as the projector receives them."""
    got: list[Delivered] = []

    async def keep(d: Delivered) -> None:
        got.append(d)

    await bus.replay(run_events(run), keep)
    return got


def project(view: TicketLogView, batch: list[Delivered]) -> None:
    """Fold ``batch`` into ``view`` as one projector batch (one transaction)."""
    TicketLogProjection(view).process_batch(batch)


async def fold_run(bus: Bus, view: TicketLogView, run: str, **kw: Any) -> int:
    """Catch ``view`` up on ``run`` from its tracked position (``kw``: the feeder's options); events folded."""
    feeder = TicketLogFeeder(TicketLogProjection(view), **kw)
    return await catch_up(bus, feeder, filter_subject=run_events(run))

"""What the monitor records says what caused it: the snapshot behind a violation, the violation behind a
ticket (also when reconciliation opens it after a crash), the clearing behind a self-healed resolution."""

from __future__ import annotations

from events import InvariantViolated, new_event
from events.bus import Bus
from events.envelope import utcnow
from tests.e2e.conftest import follow_run
from tests.services.test_monitor_baseline import Scripted, Start, monitor  # noqa: F401 - the fixture


async def test_a_violation_is_caused_by_its_snapshot_its_ticket_by_it_and_a_self_healing_by_the_clearing(
        monitor: tuple[Scripted, Start], bus: Bus, run_id: str) -> None:  # noqa: F811 - the fixture
    observer, start = monitor
    observer.down = set()
    log, replay = await follow_run(bus, run_id)
    try:
        await start()
        await log.wait_for(lambda e: e.type == "inv.baseline", 10, "the baseline")
        observer.down = {"node-2"}
        violated = await log.wait_for(lambda e: e.type == "inv.violated", 10, "the violation")
        opened = await log.wait_for(lambda e: e.type == "ticket.opened", 10, "its ticket")
        [snapshot] = [e for e in log.of_type("obs.snapshot") if e.id == violated.causation]
        assert [n.node for n in snapshot.data.nodes if n.status == "down"] == ["node-2"]  # the one that showed it
        assert opened.causation == violated.id
        observer.down = set()  # healed before any agent claimed it
        cleared = await log.wait_for(lambda e: e.type == "inv.cleared", 10, "the clearing")
        resolved = await log.wait_for(lambda e: e.type == "ticket.resolved", 10, "self-healed")
        assert resolved.data.by == "self-healed" and resolved.causation == cleared.id
    finally:
        await replay.stop()  # type: ignore[attr-defined]


async def test_a_ticket_opened_by_reconciliation_is_caused_by_the_violation_a_predecessor_recorded(
        monitor: tuple[Scripted, Start], bus: Bus, run_id: str) -> None:  # noqa: F811 - the fixture
    observer, start = monitor
    observer.down = {"node-2"}
    # a crashed predecessor recorded the violation and died before opening its ticket
    violated = new_event(InvariantViolated(invariant="node_not_up", entity="node-2", first_seen=utcnow(),
                                           summary="node-2 is down"),
                         run=run_id, source="monitor/crashed", correlation="node_not_up:node-2")
    await bus.publish(violated)
    log, replay = await follow_run(bus, run_id)
    try:
        await start()
        opened = await log.wait_for(lambda e: e.type == "ticket.opened", 10, "the reconciled ticket")
        assert opened.data.entity == "node-2" and opened.causation == violated.id
        assert [e.id for e in log.of_type("inv.violated")] == [violated.id]  # the same episode, not a new one
    finally:
        await replay.stop()  # type: ignore[attr-defined]

"""How the ticket log projection folds a run's events into rows, in every store.

A run's ticket lifecycles (``tests/projections/ticket_scripts.py``) fold into the rows their events
describe; a delivery seen twice is folded once; events that are no ticket's only move the tracking
position; a ticket event before its opening is skipped, not fatal; and where a batch starts or ends
never changes the rows. Events come from a real nats-server (real stream sequences); each test runs
once per store (SQLite, PostgreSQL, memory: ``tests/projections/conftest.py``).
"""

from __future__ import annotations

import random

import pytest
from eventsourcing.persistence import Tracking

from events import Event, new_ticket_id
from projections.ticket_log import APPLICATION_NAME, POPOTicketLogView, TicketLogProjection
from tests.projections.ticket_scripts import (
    TicketRun,
    beat,
    escalated_path,
    every_path,
    happy_path,
    interleave,
    orphan,
    project,
)
from tests.projections.ticket_stores import ViewFactory
from tickets.state import TicketStatus


async def test_a_scripted_lifecycle_folds_into_the_right_rows(ticket_run: TicketRun, run_id: str,
                                                              make_view: ViewFactory) -> None:
    a, b, c = new_ticket_id(), new_ticket_id(), new_ticket_id()
    seqs = await ticket_run.publish(every_path(a, b, c))
    view = make_view("main")
    assert await ticket_run.fold(view) == len(seqs)
    assert view.max_tracking_id() == seqs[-1]

    row = view.get_ticket(a)
    assert row is not None
    assert (row.run, row.status, row.claimed_by, row.policy) == (run_id, TicketStatus.RESOLVED, "agent-1", "rules")
    assert (row.resolved_by, row.outcome_note, row.lease_until) == ("agent", "restarted node-2", None)
    assert (row.hypothesis, row.recurrences, row.events) == ("node-2 process is not running", 1, 8)
    assert [(x.action_id, x.tool, x.args, x.status, x.ok) for x in row.actions] == [
        ("x1", "restart_node", {"node": "node-2"}, "executed", True)]
    assert row.opened_at <= row.updated_at

    escalated = view.get_ticket(b)
    assert escalated is not None
    assert (escalated.status, escalated.outcome_note, escalated.events) == (TicketStatus.ESCALATED,
                                                                          "agent stopping", 3)
    reopened = view.get_ticket(c, run=run_id)
    assert reopened is not None
    assert (reopened.status, reopened.resolved_by, reopened.outcome_note) == (TicketStatus.OPEN, None,
                                                                             "violated again")

    assert {t.ticket_id for t in view.list_tickets(run=run_id)} == {a, b, c}
    assert [t.ticket_id for t in view.list_tickets(run=run_id, status="escalated")] == [b]
    assert [t.ticket_id for t in view.list_tickets(run=run_id, status=TicketStatus.OPEN)] == [c]
    assert len(view.list_tickets(run=run_id, limit=2)) == 2
    newest_first = view.list_tickets(run=run_id)
    assert [t.opened_at for t in newest_first] == sorted((t.opened_at for t in newest_first), reverse=True)
    assert view.list_tickets(run=run_id + "-other") == []
    assert view.get_ticket("tk-none") is None
    with pytest.raises(ValueError, match="unknown ticket status"):
        view.list_tickets(status="bogus")


async def test_a_duplicate_delivery_is_ignored(ticket_run: TicketRun, run_id: str, make_view: ViewFactory) -> None:
    await ticket_run.publish(every_path(new_ticket_id(), new_ticket_id()))
    ds = await ticket_run.deliveries()
    view, once = make_view("dup"), make_view("once")
    projection = TicketLogProjection(view)

    first = projection.process_batch(ds[:5])
    assert first is not None and first.events == 5
    again = projection.process_batch(ds[2:8])  # 2..4 already tracked
    assert again is not None and (again.events, again.first_seq) == (3, ds[5].seq)
    assert projection.process_batch(ds[:8]) is None  # nothing new: nothing written
    twice = projection.process_batch([ds[8], ds[8], ds[9], ds[9]])
    assert twice is not None and twice.events == 2
    projection.process_event(ds[3].event, Tracking(APPLICATION_NAME, ds[3].seq))  # old: ignored
    projection.process_batch(ds[10:])
    project(once, ds)
    assert view.dump_rows() == once.dump_rows()
    assert view.max_tracking_id() == ds[-1].seq
    assert sum(t.events for t in view.list_tickets(run=run_id)) == 11  # 8 + 3, none counted twice


async def test_non_ticket_events_advance_tracking_only(ticket_run: TicketRun, make_view: ViewFactory) -> None:
    seqs = await ticket_run.publish([beat(n) for n in range(20)])
    view = make_view("beats")
    assert await ticket_run.fold(view) == 20
    assert view.max_tracking_id() == seqs[-1]
    assert view.dump_rows() == []


async def test_a_ticket_event_before_its_opening_is_skipped_not_fatal(ticket_run: TicketRun,
                                                                      make_view: ViewFactory) -> None:
    never_opened, tid = new_ticket_id(), new_ticket_id()
    seqs = await ticket_run.publish([orphan(never_opened), *happy_path(tid)[:3]])
    view = make_view("orphan")
    await ticket_run.fold(view)
    assert view.get_ticket(never_opened) is None
    assert view.get_ticket(tid) is not None
    assert view.max_tracking_id() == seqs[-1]


async def test_batch_boundaries_do_not_change_the_rows(ticket_run: TicketRun) -> None:
    scripts = [happy_path(new_ticket_id()) for _ in range(4)] + [escalated_path(new_ticket_id())]
    await ticket_run.publish(interleave(*scripts))
    ds = await ticket_run.deliveries()
    whole = POPOTicketLogView()
    project(whole, ds)
    rng = random.Random(7)
    for _ in range(10):
        view, i = POPOTicketLogView(), 0
        while i < len(ds):
            step = rng.randint(1, 9)
            back = rng.randint(0, 3)  # overlap with what was already fed
            project(view, ds[max(0, i - back):i + step])
            i += step
        assert view.dump_rows() == whole.dump_rows()


def test_process_event_is_the_one_event_batch() -> None:
    view = POPOTicketLogView()
    projection = TicketLogProjection(view)
    tid = new_ticket_id()
    event = Event(type="ticket.opened", run="r1", source="t", data=happy_path(tid)[0])
    projection.process_event(event, Tracking(APPLICATION_NAME, 3))
    projection.process_event(event, Tracking(APPLICATION_NAME, 3))
    state = view.get_ticket(tid)
    assert state is not None and state.events == 1
    assert view.max_tracking_id() == 3
    with pytest.raises(ValueError):
        projection.process_event(event, Tracking("OTHER", 4))

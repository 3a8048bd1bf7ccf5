"""Rebuilding and verifying the ticket log (``projections.ticket_log.rebuild``) against a real
nats-server, SQLite files and PostgreSQL (skipped, saying why, when none answers at 127.0.0.1:5432).

The session's stream holds every test's runs; a rebuild folds all of it, as it would a lab's log.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from events import new_ticket_id
from events.bus import Bus
from events.envelope import utcnow
from projections.ticket_log import TicketLogView, catch_up, follow
from projections.ticket_log.rebuild import RowDifference, compare_rows, rebuild, verify
from projections.ticket_log.rows import from_row, to_row
from tests.projections.ticket_scripts import TicketRun, claimed, every_path, feeder_of, happy_path, interleave, opened
from tests.projections.ticket_stores import ViewFactory
from tickets.state import TicketState, apply_event

STORES = pytest.mark.parametrize("store", ["sqlite", "postgres", "memory"], indirect=True)
DEADLINE_S = 20.0


def _row(ticket_id: str, **changes: object) -> dict[str, object]:
    return {**to_row(apply_event(None, opened(ticket_id), utcnow(), "r1"), 7), **changes}


# -- the comparison ---------------------------------------------------------


def test_equal_rows_have_no_difference() -> None:
    rows = [_row("tk-a"), _row("tk-b")]
    assert compare_rows(rows, [dict(r) for r in rows]) == []


def test_a_changed_column_a_missing_row_and_an_extra_row_are_each_named() -> None:
    a, b, c = _row("tk-a"), _row("tk-b"), _row("tk-c")
    live = [{**a, "status": "open", "events": 3}, c]
    rebuilt = [{**a, "status": "resolved", "events": 7}, b]
    assert compare_rows(live, rebuilt) == [
        RowDifference("r1", "tk-a", "changed", "status", "open", "resolved"),
        RowDifference("r1", "tk-a", "changed", "events", 3, 7),
        RowDifference("r1", "tk-b", "missing"),
        RowDifference("r1", "tk-c", "extra"),
    ]
    lines = [d.describe() for d in compare_rows(live, rebuilt)]
    assert lines[0] == "tk-a (run r1) status: live 'open', rebuilt 'resolved'"
    assert "missing from the live view" in lines[2] and "only in the live view" in lines[3]


# -- the swap ---------------------------------------------------------------


@STORES
async def test_the_swap_replaces_every_row_and_the_position_unless_the_view_moved_beyond(
        bus: Bus, ticket_run: TicketRun, make_view: ViewFactory) -> None:
    await ticket_run.publish(every_path(new_ticket_id(), new_ticket_id()))
    live, scratch = make_view("live"), make_view("scratch")
    await catch_up(bus, feeder_of(scratch))
    position = scratch.tracked()
    rows = _states(scratch)
    assert live.replace_rows(rows, position) is True
    assert live.dump_rows() == scratch.dump_rows() and live.tracked() == position
    assert live.replace_rows([], position - 1) is False  # the view is beyond: nothing changes
    assert live.dump_rows() == scratch.dump_rows() and live.tracked() == position


def _states(view: TicketLogView) -> list[tuple[TicketState, int]]:
    return [(from_row(r), int(r["last_seq"])) for r in view.dump_rows()]


# -- rebuild and verify -----------------------------------------------------


@STORES
async def test_a_rebuild_equals_a_fresh_fold_and_verify_finds_no_difference(
        bus: Bus, ticket_run: TicketRun, make_view: ViewFactory) -> None:
    await ticket_run.publish(every_path(new_ticket_id(), new_ticket_id(), new_ticket_id()))
    view = make_view("rebuilt")
    seen: list[tuple[int, int]] = []
    result = await rebuild(bus, view, on_progress=lambda done, total: seen.append((done, total)))
    last = await bus.last_seq()
    assert result.position == view.tracked() == last
    assert result.events >= 21 and result.rows == len(view.dump_rows()) >= 3
    assert seen and seen[-1] == (result.position, result.position)
    checked = await verify(bus, view)
    assert checked.differences == [] and checked.rows == result.rows and checked.position == result.position


@STORES
async def test_verify_reports_a_deliberately_altered_row(bus: Bus, run_id: str, ticket_run: TicketRun,
                                                         make_view: ViewFactory) -> None:
    tid = new_ticket_id()
    await ticket_run.publish(happy_path(tid))
    view = make_view("altered")
    await rebuild(bus, view)
    [state] = [s for s, _ in _states(view) if s.ticket_id == tid]
    position = view.tracked()
    rows = [(s if s.ticket_id != tid else s.model_copy(update={"hypothesis": "gremlins"}), seq)
            for s, seq in _states(view)]
    assert view.replace_rows(rows, position)  # an in-place change of one column, position kept
    checked = await verify(bus, view)
    assert checked.differences == [RowDifference(run_id, tid, "changed", "hypothesis", "gremlins",
                                                 state.hypothesis)]


@STORES
async def test_a_view_ahead_of_the_stream_is_cleared_and_rebuilt(bus: Bus, ticket_run: TicketRun,
                                                                 make_view: ViewFactory) -> None:
    await ticket_run.publish(happy_path(new_ticket_id()))
    view = make_view("ahead")
    last = await bus.last_seq()
    assert view.replace_rows([], last + 1000)  # as if built from a longer log
    result = await rebuild(bus, view)
    assert result.cleared_ahead and view.tracked() == result.position == last
    assert (await verify(bus, view)).differences == []


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
async def test_a_rebuild_while_the_projector_feeds_the_same_view_ends_equal_to_a_fresh_fold(
        bus: Bus, run_id: str, ticket_run: TicketRun, make_view: ViewFactory) -> None:
    await ticket_run.publish(interleave(*(happy_path(new_ticket_id()) for _ in range(10))))
    live = make_view("contended")
    projector = feeder_of(make_view("contended"), batch_size=5, flush_interval_s=0.005)
    stop = asyncio.Event()
    running = asyncio.create_task(follow(bus, projector, stop))

    async def keep_writing() -> None:  # new tickets and claims while the rebuild runs
        for _ in range(15):
            tid = new_ticket_id()
            await ticket_run.publish([opened(tid, entity="node-3"), claimed(tid, agent="a", lease_s=5)])

    writer = asyncio.create_task(keep_writing())
    try:
        for _ in range(3):
            await rebuild(bus, live)
        await writer
        last = await bus.last_seq()
        async with asyncio.timeout(DEADLINE_S):
            while live.tracked() < last:
                await projector.progress.wait()
                projector.progress.clear()
    finally:
        stop.set()
        await running
    checked = await verify(bus, live)
    assert checked.position >= last and checked.differences == []
    mine = [r for r in live.dump_rows() if r["run"] == run_id]
    assert len(mine) == 25 and sum(r["status"] == "claimed" for r in mine) == 15


# -- a log whose first events aged out ----------------------------------------


async def test_a_rebuild_refuses_to_drop_tickets_whose_events_aged_out_and_verify_compares_the_rest(
        tmp_path: Path) -> None:
    from events.settings import STREAM_NAME, BusSettings
    from oplab.infra import start_nats
    from projections.ticket_log import POPOTicketLogView
    from projections.ticket_log.rebuild import HistoryAgedOut

    server = start_nats(tmp_path / "nats")  # its own: the session's stream must never be purged
    own = await Bus.connect(BusSettings(nats_url=server.url), source="tests")
    try:
        old, kept = new_ticket_id(), new_ticket_id()
        aged = TicketRun(own, "r20261207t180000-aged")
        await aged.publish(happy_path(old))
        first_kept = await own.last_seq() + 1
        await aged.publish(happy_path(kept))
        view = POPOTicketLogView()
        await catch_up(own, feeder_of(view))
        before = view.dump_rows()
        assert {r["ticket_id"] for r in before} == {old, kept}
        await own.js.purge_stream(STREAM_NAME, seq=first_kept)  # the old ticket's events age out

        with pytest.raises(HistoryAgedOut) as refused:
            await rebuild(own, view)
        assert refused.value.first_seq == first_kept
        assert view.dump_rows() == before, "a refused rebuild changes nothing"

        checked = await verify(own, view)
        assert (checked.first_seq, checked.unverifiable, checked.differences) == (first_kept, 1, [])

        forced = await rebuild(own, view, force=True)
        assert forced.rows == 1 and {r["ticket_id"] for r in view.dump_rows()} == {kept}
    finally:
        await own.close()
        server.stop()

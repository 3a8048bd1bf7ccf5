"""`oplab tickets` queries: a lab home without a ticket-log view folds the lab's log instead of
answering nothing (a container without the projector's volume, a copied home)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from events import TicketOpened, new_ticket_id
from events.bus import Bus
from events.envelope import utcnow
from events.settings import STREAM_NAME, BusSettings
from oplab.tickets import get_ticket, list_tickets
from projections.ticket_log import TicketLogFeeder, TicketLogProjection, TicketLogSettings, catch_up, open_ticket_log
from tests.oplab.recorded_run import EVENTS, RUN, imported_home, oplab, served
from tickets import Ticket, TicketStore


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "elsewhere"
    monkeypatch.setenv("OPLAB_HOME", str(home))
    monkeypatch.delenv("OPLAB_TICKETLOG_URL", raising=False)
    return home


async def _open_ticket(bus: Bus, run: str, entity: str) -> str:
    ticket = Ticket.open(TicketOpened(ticket_id=new_ticket_id(), invariant="node_down", entity=entity,
                                      subject="ratelimiter", summary=f"{entity} is down", first_seen=utcnow()),
                         run=run)
    await TicketStore(bus, run).save(ticket)
    return ticket.ticket_id


async def test_without_a_view_the_query_folds_the_log_and_says_so(
        bus: Bus, nats_server, run_id: str, empty_home: Path) -> None:  # type: ignore[no-untyped-def]
    ids = [await _open_ticket(bus, run_id, entity) for entity in ("node-1", "node-2")]

    @contextmanager
    def lab() -> Iterator[str]:
        yield nats_server.url

    said: list[str] = []
    rows = await _in_thread(lambda: list_tickets(run=run_id, status=None, limit=10, nats_url=lab,
                                                 notice=said.append))
    assert sorted(r.ticket_id for r in rows) == sorted(ids)
    assert len(said) == 1 and "no ticket-log view at" in said[0]
    folded = re.search(r"folded (\d+) ticket event\(s\) from the lab's log", said[0])
    assert folded and int(folded.group(1)) >= 2  # the session's NATS holds other tests' runs too
    row = await _in_thread(lambda: get_ticket(ids[0], nats_url=lab))
    assert row is not None and row.entity == "node-1"
    assert not (empty_home / "ticketlog.sqlite").exists()  # a query writes no view of its own


async def test_without_a_view_or_a_log_the_empty_answer_says_why(empty_home: Path) -> None:
    @contextmanager
    def unreachable() -> Iterator[str]:
        yield "nats://127.0.0.1:1"

    said: list[str] = []
    rows = await _in_thread(lambda: list_tickets(run=None, status=None, limit=10, nats_url=unreachable,
                                                 notice=said.append))
    assert rows == [] and len(said) == 1 and "the lab's log is not reachable" in said[0]


async def _in_thread(fn):  # type: ignore[no-untyped-def]
    """The queries run their own event loop (they are the CLI's), so off this one."""
    import asyncio

    return await asyncio.to_thread(fn)


# -- the CLI on the recorded run: a view missing, behind, ahead, or past events that aged out ----------


def _view_folded_up_to(home: Path, upto: int, *, purge_below: int | None = None) -> None:
    """The home's SQLite view folded from the log up to ``upto`` (as a projector that stopped there);
    then, with ``purge_below``, the log's events before that sequence removed (as retention would)."""
    async def fold(url: str) -> None:
        bus = await Bus.connect(BusSettings(nats_url=url), source="tests")
        view = open_ticket_log(TicketLogSettings(home=home))
        try:
            await catch_up(bus, TicketLogFeeder(TicketLogProjection(view)), upto=upto)
            assert view.tracked() == upto
            if purge_below is not None:
                await bus.js.purge_stream(STREAM_NAME, seq=purge_below)
        finally:
            view.close()
            await bus.close()

    with served(home) as url:
        asyncio.run(fold(url))


@pytest.fixture
def recorded_home(tmp_path: Path) -> Path:
    return imported_home(tmp_path / "oplab")


def test_a_home_with_only_the_log_lists_its_tickets(recorded_home: Path) -> None:
    result = oplab("tickets", "list", home=recorded_home)
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if "tk-" in line]  # a table of one ticket
    cells = row.split()  # piped, the table has no rules: whitespace separates the cells
    assert cells[0].startswith("tk-") and cells[1:3] == ["resolved", "node_down/node-1"]
    assert "no ticket-log view at sqlite:" in result.stderr and "folded 7 ticket event(s)" in result.stderr
    assert oplab("tickets", "list", "--run", RUN, "--json", home=recorded_home).returncode == 0


def test_status_filters_the_list_and_an_unknown_one_is_bad_usage_naming_the_choices(recorded_home: Path) -> None:
    resolved = oplab("tickets", "list", "--status", "resolved", "--json", home=recorded_home)
    assert resolved.returncode == 0, resolved.stderr
    assert [t["status"] for t in json.loads(resolved.stdout)] == ["resolved"]
    still_open = oplab("tickets", "list", "--status", "open", home=recorded_home)
    assert still_open.returncode == 0 and still_open.stdout == "no tickets\n"
    bad = oplab("tickets", "list", "--status", "fixed", home=recorded_home)
    said = " ".join(bad.stderr.replace("│", " ").split())  # typer's error box wraps its lines
    assert bad.returncode == 2 and "'fixed' is not one of 'open', 'claimed', 'diagnosed'" in said
    assert "'resolved', 'escalated'" in said


def test_a_view_behind_the_log_is_caught_up_first_and_says_so(recorded_home: Path) -> None:
    _view_folded_up_to(recorded_home, 60)  # the ticket just opened
    result = oplab("tickets", "list", "--json", home=recorded_home)
    assert result.returncode == 0, result.stderr
    assert f"the ticket log was {EVENTS - 60} events behind the log: folded them" in result.stderr
    assert [t["status"] for t in json.loads(result.stdout)] == ["resolved"]
    again = oplab("tickets", "list", home=recorded_home)
    assert again.returncode == 0 and "behind" not in again.stderr  # folded into the view itself, once
    assert oplab("projections", "rebuild", "--verify", home=recorded_home).returncode == 0


def test_a_view_ahead_of_the_log_names_the_rebuild_command(recorded_home: Path) -> None:
    _view_folded_up_to(recorded_home, EVENTS)
    view = open_ticket_log(TicketLogSettings(home=recorded_home))
    try:
        assert view.replace_rows([], 5000)  # as if built from another, longer log
    finally:
        view.close()
    result = oplab("tickets", "list", home=recorded_home)
    assert result.returncode == 0
    assert (f"the ticket log is ahead of the lab's log (it has folded up to seq 5000, the log ends at seq {EVENTS})"
            in result.stderr)
    assert "`oplab projections rebuild ticket_log`" in result.stderr and result.stdout == "no tickets\n"
    assert oplab("projections", "rebuild", "ticket_log", home=recorded_home).returncode == 0
    fixed = oplab("tickets", "list", home=recorded_home)
    assert " resolved " in fixed.stdout and "ahead" not in fixed.stderr


def test_a_view_behind_events_that_aged_out_names_the_rebuild_command(recorded_home: Path) -> None:
    _view_folded_up_to(recorded_home, 50, purge_below=70)
    result = oplab("tickets", "list", home=recorded_home)
    assert result.returncode == 0
    assert (f"the ticket log is {EVENTS - 50} events behind the lab's log, and the events after its seq 50 aged "
            "out of the log (it now starts at seq 70)") in result.stderr
    assert "`oplab projections rebuild ticket_log`" in result.stderr

"""`oplab tickets` queries: a lab home without a ticket-log view folds the lab's log instead of
answering nothing (a container without the projector's volume, a copied home)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from events import TicketOpened, new_ticket_id
from events.bus import Bus
from events.envelope import utcnow
from oplab.tickets import get_ticket, list_tickets
from projections.tickets import Ticket, TicketStore


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

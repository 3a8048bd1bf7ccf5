"""Fixtures of the projections' tests: the ticket log's views in each store (SQLite files, a
PostgreSQL schema per view, memory), and this test's run to publish ticket scripts into. PostgreSQL tests
are skipped, saying why, when psycopg is not installed or no server answers at 127.0.0.1:5432."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.bus import Bus
from projections.ticket_log import POPOTicketLogView, TicketLogSettings, TicketLogView, open_ticket_log
from tests.projections.ticket_scripts import TicketRun
from tests.projections.ticket_stores import PG_BASE, ViewFactory, create_schema, fresh_database


@pytest.fixture
def ticket_run(bus: Bus, run_id: str) -> TicketRun:
    """This test's run (``run_id``) on the session's bus, to publish ticket scripts into and fold from."""
    return TicketRun(bus, run_id)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A uniquely named PostgreSQL database for this session, dropped at the end."""
    with fresh_database("oplab_test") as name:
        yield name


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def store(request: pytest.FixtureRequest) -> str:
    """The store a test's views live in: every test that opens views runs once per store (narrow it with
    ``@pytest.mark.parametrize("store", [...], indirect=True)``)."""
    return str(request.param)


@pytest.fixture
def make_view(store: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ViewFactory]:
    """Opens the named view of this test's store; the same name reopens the same data."""
    opened: list[TicketLogView] = []
    memory: dict[str, TicketLogView] = {}
    schemas: dict[str, str] = {}
    database = request.getfixturevalue("pg_database") if store == "postgres" else ""

    def make(name: str) -> TicketLogView:
        if store == "memory":
            return memory.setdefault(name, POPOTicketLogView())
        if store == "sqlite":
            url = f"sqlite:///{tmp_path / name}.sqlite"
        else:
            if name not in schemas:
                schemas[name] = create_schema(database, f"v_{name}_{secrets.token_hex(3)}")
            url = f"{PG_BASE}/{database}?schema={schemas[name]}"
        view = open_ticket_log(TicketLogSettings(ticketlog_url=url))
        opened.append(view)
        return view

    yield make
    for view in opened:
        view.close()

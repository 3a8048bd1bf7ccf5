"""The ticket log's stores: every store holds the same rows for the same events; settings choose the
store (SQLite under the lab's home by default, ``OPLAB_TICKETLOG_URL`` for PostgreSQL or memory); an
empty log is a normal state; an unreachable PostgreSQL fails clearly.

PostgreSQL is the local server (``tests/projections/ticket_stores.py``), skipped, saying why, when it
does not answer.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from events import new_ticket_id
from projections.ticket_log import (
    POPOTicketLogView,
    SQLiteTicketLogView,
    TicketLogSettings,
    open_ticket_log,
    parse_store_url,
)
from tests.projections.ticket_scripts import TicketRun, happy_path, interleave, self_healed_then_reopened
from tests.projections.ticket_stores import PG_BASE, create_schema


async def test_every_store_holds_the_same_rows(ticket_run: TicketRun, tmp_path: Path,
                                              request: pytest.FixtureRequest) -> None:
    await ticket_run.publish(interleave(happy_path(new_ticket_id()), self_healed_then_reopened(new_ticket_id())))
    urls = [f"sqlite:///{tmp_path / 'same.sqlite'}", "memory://"]
    try:
        database = request.getfixturevalue("pg_database")
        urls.append(f"{PG_BASE}/{database}?schema={create_schema(database, 'same_' + secrets.token_hex(3))}")
    except pytest.skip.Exception:
        pass  # PostgreSQL absent: compare the others
    dumps = []
    for url in urls:
        view = open_ticket_log(TicketLogSettings(ticketlog_url=url))
        try:
            await ticket_run.fold(view)
            dumps.append(view.dump_rows())
        finally:
            view.close()
    assert len(dumps[0]) == 2
    assert all(d == dumps[0] for d in dumps)


async def test_an_empty_log_is_a_normal_state(ticket_run: TicketRun, run_id: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    view = open_ticket_log(TicketLogSettings(home=home))
    try:
        assert isinstance(view, SQLiteTicketLogView)
        assert (home / "ticketlog.sqlite").exists()
        assert view.list_tickets() == []
        assert view.list_tickets(run=run_id, status="open") == []
        assert view.get_ticket("tk-nothing") is None
        assert view.max_tracking_id() is None
        assert await ticket_run.fold(view) == 0
        assert view.max_tracking_id() is None
    finally:
        view.close()
    reopened = open_ticket_log(TicketLogSettings(home=home))  # tables exist: created once
    assert reopened.list_tickets() == []
    reopened.close()


def test_settings_choose_the_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPLAB_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("OPLAB_TICKETLOG_URL", raising=False)
    settings = TicketLogSettings()
    assert settings.url() == f"sqlite:///{tmp_path / 'h' / 'ticketlog.sqlite'}"
    assert settings.location().path == tmp_path / "h" / "ticketlog.sqlite"
    monkeypatch.setenv("OPLAB_TICKETLOG_URL", "postgresql://lab:pw@db.local:6543/tickets?schema=oplab")
    pg = TicketLogSettings().location()
    assert (pg.kind, pg.user, pg.password, pg.host, pg.port, pg.dbname, pg.schema) == (
        "postgres", "lab", "pw", "db.local", 6543, "tickets", "oplab")
    assert "pw" not in pg.describe()
    assert parse_store_url("sqlite:///rel/t.sqlite").path == Path("rel/t.sqlite")
    assert parse_store_url("memory://").kind == "memory"
    assert isinstance(open_ticket_log(TicketLogSettings(ticketlog_url="memory://")), POPOTicketLogView)
    for bad in ("mysql://x/y", "postgresql://host:5432/", "sqlite:///"):
        with pytest.raises(ValueError):
            parse_store_url(bad)


def test_an_unreachable_postgres_fails_clearly() -> None:
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    from eventsourcing.persistence import OperationalError

    with pytest.raises(OperationalError, match="unreachable"):
        open_ticket_log(TicketLogSettings(ticketlog_url="postgresql://postgres@127.0.0.1:1/none"))

"""``oplab projections rebuild [NAME] [--verify]`` on the recorded ``node_kill`` run, in SQLite and in
PostgreSQL (a database of its own per test, at 127.0.0.1:5432; skipped, saying why, when none
answers). The CLI runs as a subprocess; rows are altered directly in the store, as a bug would."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oplab.recorded_run import EVENTS, RUN, imported_home, oplab
from tests.projections.ticket_stores import PG_BASE, fresh_database


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return imported_home(tmp_path / "oplab")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """``OPLAB_TICKETLOG_URL`` of a fresh PostgreSQL database, dropped afterwards."""
    with fresh_database("oplab_rebuild") as name:
        yield f"{PG_BASE}/{name}"


def alter_sqlite(home: Path, sql: str) -> None:
    with sqlite3.connect(home / "ticketlog.sqlite") as db:
        assert db.execute(sql).rowcount == 1


def alter_postgres(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        assert db.execute(sql).rowcount == 1


def check_rebuild_then_verify(home: Path, env: dict[str, str]) -> None:
    rebuilt = oplab("projections", "rebuild", "--json", home=home, env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    doc = json.loads(rebuilt.stdout)
    assert (doc["projection"], doc["rows"], doc["position"], doc["events"]) == ("ticket_log", 1, EVENTS, EVENTS)
    assert doc["events_per_s"] > 0 and doc["seconds"] > 0
    human = oplab("projections", "rebuild", "ticket_log", home=home, env=env)
    assert human.returncode == 0, human.stderr
    assert human.stdout.splitlines()[0].startswith("rebuilt ticket_log at ")
    assert f"{EVENTS} events in " in human.stdout and " events/s)" in human.stdout
    verified = oplab("projections", "rebuild", "--verify", home=home, env=env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("no difference in 1 row (ticket_log at ") and f"up to seq {EVENTS}" in (
        verified.stdout)
    listed = oplab("tickets", "list", "--run", RUN, "--json", home=home, env=env)
    assert [t["status"] for t in json.loads(listed.stdout)] == ["resolved"]


def check_the_altered_row_is_reported(home: Path, env: dict[str, str]) -> None:
    verified = oplab("projections", "rebuild", "--verify", home=home, env=env)
    assert verified.returncode == 1
    lines = verified.stdout.splitlines()
    assert any(line.startswith("tk-") and f"(run {RUN}) status: live 'claimed', rebuilt 'resolved'" in line
               for line in lines), verified.stdout
    assert lines[-1].startswith("1 difference(s) between ticket_log")
    as_json = oplab("projections", "rebuild", "--verify", "--json", home=home, env=env)
    assert as_json.returncode == 1
    [difference] = json.loads(as_json.stdout)["differences"]
    assert (difference["kind"], difference["column"], difference["live"], difference["rebuilt"]) == (
        "changed", "status", "claimed", "resolved")
    fixed = oplab("projections", "rebuild", home=home, env=env)
    assert fixed.returncode == 0, fixed.stderr
    assert oplab("projections", "rebuild", "--verify", home=home, env=env).returncode == 0


def test_sqlite_a_rebuilt_view_verifies_without_difference(home: Path) -> None:
    check_rebuild_then_verify(home, {})


def test_sqlite_a_deliberately_altered_row_is_reported_and_a_rebuild_repairs_it(home: Path) -> None:
    assert oplab("projections", "rebuild", home=home).returncode == 0
    alter_sqlite(home, "UPDATE ticket_log SET status='claimed'")
    check_the_altered_row_is_reported(home, {})


def test_postgres_a_rebuilt_view_verifies_without_difference(home: Path, pg_url: str) -> None:
    check_rebuild_then_verify(home, {"OPLAB_TICKETLOG_URL": pg_url})


def test_postgres_a_deliberately_altered_row_is_reported_and_a_rebuild_repairs_it(home: Path, pg_url: str) -> None:
    env = {"OPLAB_TICKETLOG_URL": pg_url}
    assert oplab("projections", "rebuild", home=home, env=env).returncode == 0
    alter_postgres(pg_url, "UPDATE ticket_log SET status='claimed'")
    check_the_altered_row_is_reported(home, env)


def test_an_unknown_projection_is_bad_usage_naming_the_known_ones(tmp_path: Path) -> None:
    result = oplab("projections", "rebuild", "timeline", home=tmp_path / "oplab")
    said = " ".join(result.stderr.replace("│", " ").split())  # typer's error box wraps its lines
    assert result.returncode == 2 and "'timeline' is not one of 'ticket_log'" in said

"""Where the ticket log tests keep their views: SQLite files, PostgreSQL schemas, memory.

PostgreSQL is the local server at ``PG_BASE`` (user ``postgres``, trust auth); the ``pg_database``
fixture (``tests/projections/conftest.py``) makes a database for the session, and each view gets a
schema of its own in it (``create_schema``). The ``store`` and ``make_view`` fixtures open views.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator

import pytest

from projections.ticket_log import TicketLogView

PG_BASE = "postgresql://postgres@127.0.0.1:5432"

# ``make_view(name)``: the named view of the test's store; the same name reopens the same data.
ViewFactory = Callable[[str], TicketLogView]


def create_schema(database: str, schema: str) -> str:
    """Create ``schema`` in ``database`` on the local PostgreSQL; returns its name."""
    import psycopg  # only where PostgreSQL is used: the fixtures skip when psycopg is absent
    from psycopg import sql

    with psycopg.connect(f"{PG_BASE}/{database}", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new, uniquely named database on the local PostgreSQL (``<prefix>_<hex>``), dropped afterwards;
    the test is skipped, saying why, when psycopg is not installed or no server answers."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'eventsourcing[postgres]')")
    try:
        admin = psycopg.connect(f"{PG_BASE}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 does not answer (user postgres, trust auth): {exc}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()

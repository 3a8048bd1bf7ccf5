"""Where the ticket log lives (env prefix ``OPLAB_``).

``OPLAB_TICKETLOG_URL`` chooses the store:

- ``sqlite:///relative/path.sqlite`` or ``sqlite:////absolute/path.sqlite`` (SQLAlchemy's
  convention: three slashes then the path). The default is
  ``sqlite:///<OPLAB_HOME>/ticketlog.sqlite`` (``OPLAB_HOME`` defaults to ``.oplab``).
- ``postgresql://user[:password]@host[:port]/dbname[?schema=name]`` (``postgres://`` too).
  A missing password falls back to ``PGPASSWORD``; a missing host/port/user to
  ``127.0.0.1`` / ``5432`` / ``postgres``.
- ``memory://``: an in-process view (console, tests); it forgets everything on exit.

``OPLAB_TICKETLOG_BATCH_SIZE`` (1000) and ``OPLAB_TICKETLOG_FLUSH_INTERVAL_S`` (0.05) tune the
projector's batching: a batch is committed when that many events are buffered or that much
time passed; ``OPLAB_TICKETLOG_MAX_BATCH`` (10000) caps the events of one transaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_FILENAME = "ticketlog.sqlite"


class TicketLogSettings(BaseSettings):
    """Settings of the ticket log view and of whoever feeds it."""

    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")

    home: Path = Field(default=Path(".oplab"), description="State dir; the default SQLite file lives here")
    ticketlog_url: str | None = Field(
        default=None,
        description="sqlite:///path, postgresql://user@host:port/db or memory:// "
                    "(default: sqlite:///<home>/ticketlog.sqlite)",
    )
    ticketlog_batch_size: int = Field(default=1000, ge=1, description="Events per committed batch")
    ticketlog_max_batch: int = Field(default=10_000, ge=1,
                                     description="Most events folded in one transaction")
    ticketlog_flush_interval_s: float = Field(default=0.05, gt=0,
                                              description="Longest wait before a partial batch commits")

    def url(self) -> str:
        """The effective store URL (the SQLite default filled in)."""
        if self.ticketlog_url:
            return self.ticketlog_url
        return f"sqlite:///{self.home / DEFAULT_FILENAME}"

    def location(self) -> StoreLocation:
        return parse_store_url(self.url())


@dataclass(frozen=True)
class StoreLocation:
    """A parsed ticket log URL."""

    kind: Literal["sqlite", "postgres", "memory"]
    path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = ""
    schema: str = ""

    def describe(self) -> str:
        """For logs: where the view is, never the password."""
        if self.kind == "sqlite":
            return f"sqlite:{self.path}"
        if self.kind == "postgres":
            return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"
        return "memory"


def parse_store_url(url: str) -> StoreLocation:
    """Parse a ticket log URL; raises ``ValueError`` for anything else."""
    if url.startswith("memory:"):
        return StoreLocation(kind="memory")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise ValueError(f"ticket log URL {url!r} names no file")
        return StoreLocation(kind="sqlite", path=Path(path))
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise ValueError(f"ticket log URL {url!r} names no database")
        query = parse_qs(parts.query)
        return StoreLocation(
            kind="postgres",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or os.environ.get("PGPASSWORD", "")),
            dbname=dbname,
            schema=query.get("schema", [""])[0],
        )
    raise ValueError(
        f"unsupported ticket log URL {url!r}: use sqlite:///path, postgresql://user@host:port/db or memory://"
    )

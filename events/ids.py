"""Identifiers. All are safe as a single NATS subject token (no dots, no wildcards)."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def new_event_id() -> str:
    """A globally unique event id (also the JetStream ``Nats-Msg-Id``)."""
    return uuid.uuid4().hex


def new_run_id(now: datetime | None = None) -> str:
    """A run id like ``r20261124t2358-ab12``: sortable by start time, unique by suffix."""
    now = now or datetime.now(UTC)
    return f"r{now:%Y%m%dt%H%M%S}-{secrets.token_hex(2)}"


def new_ticket_id() -> str:
    return f"tk-{secrets.token_hex(5)}"


def new_fault_id() -> str:
    return f"f-{secrets.token_hex(5)}"


def is_token(value: str) -> bool:
    """True if ``value`` may be used as one token of a NATS subject."""
    return bool(_TOKEN.match(value))


def new_campaign_id(now: datetime | None = None) -> str:
    """A campaign id like ``c20261207t1700-ab12`` (a subject token, so it stands where a run id does)."""
    now = now or datetime.now(UTC)
    return f"c{now:%Y%m%dt%H%M%S}-{secrets.token_hex(2)}"

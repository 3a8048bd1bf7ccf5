"""The bodies the chaos service's commands accept, and the one line that describes an error in an answer
or a record (a bad body, a refusal, a subject's failure).

Both models forbid unknown fields: a misspelt field is a 400, never silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class InjectRequest(BaseModel):
    """``cmd.chaos.inject``: ``kind`` from the kit, an optional ``target`` (else the fault picks one),
    ``ttl_s`` (else the fault's default), ``params`` (the fault's own model), ``request_id`` (a repeat
    is answered with its fault) and ``causation`` (an event id, recorded on ``fault_requested``)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    target: str | None = None
    ttl_s: float | None = Field(default=None, gt=0)
    params: dict[str, Any] = {}
    request_id: str | None = Field(default=None, min_length=1, max_length=200)
    causation: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")  # an event id, nothing else


class RevertRequest(BaseModel):
    """``cmd.chaos.revert``: one ``fault_id`` or ``all``; ``reason`` ``shutdown`` when the lab goes down."""

    model_config = ConfigDict(extra="forbid")
    fault_id: str | None = None
    all: bool = False
    reason: Literal["explicit", "shutdown"] = "explicit"


def describe(exc: Exception) -> str:
    """One line for a caller: a validation error's first problem and where it is, else the error's text."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return f"bad request: {where}: {first.get('msg')}"
    return str(exc) or repr(exc)

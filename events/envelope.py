"""The envelope every message on the bus carries, and the payload base class.

An :class:`Event` is immutable. Its ``type`` is ``<domain>.<name>`` and names
exactly one :class:`Payload` subclass in the catalogue; ``v`` is that payload's
schema version. ``correlation`` ties an event to the ticket or fault it is
about, ``causation`` to the event that caused it.

Causation rules (what each service records; ``oplab events show`` walks them back):

- roots (no causation): ``obs.snapshot``, ``workload.stats``, ``svc.*``, ``run.*``,
  ``director.chapter_started``, a ``chaos.fault_requested`` nobody names a cause for
  (``oplab chaos inject`` by hand), ``bus.rejected``;
- monitor: ``inv.violated`` / ``inv.cleared`` / ``inv.baseline`` <- the ``obs.snapshot``
  that showed it (or the ``workload.stats`` it judged on arrival); ``ticket.opened`` <- its
  ``inv.violated`` (on reconciliation too, when the violation's event is known; else the snapshot);
  a self-healed ``ticket.resolved``
  <- the ``inv.cleared`` that cleared it;
- every other ticket event <- the ticket's previous event (``TicketStore``: the event it
  was loaded at; several events of one save chain one to the next), so the agent's
  claimed .. diagnosed .. action_* .. verified .. resolved, a human's approval and a
  recurrence chain back to ``ticket.opened``;
- agent: every ``agent.*`` event of a session <- the ``ticket.claimed`` it works under;
- chaos: ``fault_requested`` <- the command's ``causation`` (the director sends its
  ``chapter_started``); ``fault_injected`` and a failed injection <- the ``fault_requested``;
  ``fault_effective``, ``fault_adopted``, ``fault_reverted`` and a failed verify or revert
  <- the fault's ``fault_injected``;
- director: ``action_taken`` and ``chapter_finished`` <- their ``chapter_started``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator

from events.ids import new_event_id

_REGISTRY: dict[str, type[Payload]] = {}


class Payload(BaseModel):
    """Base class of every event payload.

    Subclasses set ``TYPE`` (``"<domain>.<name>"``) and, when their schema
    changes incompatibly, bump ``VERSION``. Defining a subclass registers it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE:
            if cls.TYPE in _REGISTRY and _REGISTRY[cls.TYPE] is not cls:
                raise TypeError(f"event type {cls.TYPE!r} defined twice")
            _REGISTRY[cls.TYPE] = cls

    @classmethod
    def domain(cls) -> str:
        return cls.TYPE.split(".", 1)[0]


def payload_type(type_name: str) -> type[Payload] | None:
    """The payload class registered for ``type_name``, or None."""
    return _REGISTRY.get(type_name)


def registered_types() -> dict[str, type[Payload]]:
    return dict(_REGISTRY)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """One fact, as stored in the log. ``v`` is always its payload's ``VERSION`` (set when not
    given; a mismatch is refused), so a payload is never stored under another version's label."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_event_id)
    type: str
    v: int = 0
    time: datetime = Field(default_factory=utcnow)
    run: str
    source: str
    correlation: str | None = None
    causation: str | None = None
    data: SerializeAsAny[Payload]

    @model_validator(mode="after")
    def _version_of_the_payload(self) -> Event:
        if self.v == 0:
            object.__setattr__(self, "v", self.data.VERSION)  # frozen: set once, while validating
        elif self.v != self.data.VERSION:
            raise ValueError(f"v={self.v} but {self.type} payloads are version {self.data.VERSION}")
        return self

    @property
    def domain(self) -> str:
        return self.type.split(".", 1)[0]


def new_event(
    data: Payload,
    *,
    run: str,
    source: str,
    correlation: str | None = None,
    causation: str | Event | None = None,
    time: datetime | None = None,
) -> Event:
    """Wrap ``data`` in a fresh envelope (new id, current UTC time)."""
    if isinstance(causation, Event):
        causation = causation.id
    return Event(
        type=data.TYPE,
        v=data.VERSION,
        run=run,
        source=source,
        correlation=correlation,
        causation=causation,
        data=data,
        time=time or utcnow(),
    )

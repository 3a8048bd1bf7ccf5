"""Why an event happened: its causation chain, and the events correlated with it (``oplab events show``).

Pure functions over events already read from the log (:mod:`oplab.history` reads them):

- :func:`causation_chain` follows each event's ``causation`` id through an id -> (seq, event) index,
  nearest cause first, up to the root (an event without a causation). A cause the index does not
  hold - aged out of the stream, or the id of something that is no stored event - ends the chain
  with that id as ``missing``; an id seen twice (only a corrupt log could loop) ends it as ``loop``.
- :func:`correlated_with` is every other event that ``oplab events RUN --correlation K`` finds for
  one of the event's keys (its correlation, its ticket, its fault: :func:`oplab.event_query.correlation_keys`).

Which event causes which is the services' rule, written down in :mod:`events.envelope`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from events import Event
from oplab.event_query import EventQuery, correlation_keys

Stored = tuple[int, Event]
"""An event with its stream sequence."""


@dataclass(frozen=True)
class Chain:
    """An event's causes, nearest first, and why the walk stopped before a root, if it did."""

    causes: list[Stored] = field(default_factory=list)
    missing: str | None = None  # the id of a cause the log does not hold
    loop: str | None = None  # an id met twice on the way back

    def as_json(self) -> list[dict[str, Any]]:
        """The chain as ``causation_chain``: event documents (with ``seq``), nearest first, then a note
        ``{"missing": id, ...}`` or ``{"loop": id, ...}`` if the walk ended without reaching a root."""
        docs: list[dict[str, Any]] = [event_doc(seq, event) for seq, event in self.causes]
        if self.missing is not None:
            docs.append({"missing": self.missing, "note": MISSING_NOTE})
        if self.loop is not None:
            docs.append({"loop": self.loop, "note": "this id was met before on the way back: the chain loops"})
        return docs


MISSING_NOTE = "not in the log: aged out of the stream, or the id of something that is no stored event"


def event_doc(seq: int, event: Event) -> dict[str, Any]:
    """An event as ``--json`` prints it: its envelope and data, with its stream ``seq``."""
    return {"seq": seq, **event.model_dump(mode="json")}


def index_by_id(events: Iterable[Stored]) -> dict[str, Stored]:
    """Events by id (the first stored, should an id repeat)."""
    index: dict[str, Stored] = {}
    for seq, event in events:
        index.setdefault(event.id, (seq, event))
    return index


def causation_chain(event: Event, index: Mapping[str, Stored]) -> Chain:
    """Follow ``event``'s causation back through ``index`` to the root (see the module doc)."""
    causes: list[Stored] = []
    seen = {event.id}
    cause = event.causation
    while cause:
        if cause in seen:
            return Chain(causes, loop=cause)
        found = index.get(cause)
        if found is None:
            return Chain(causes, missing=cause)
        causes.append(found)
        seen.add(cause)
        cause = found[1].causation
    return Chain(causes)


def correlated_with(event: Event, events: Iterable[Stored]) -> list[Stored]:
    """The other events about the same ticket, fault or correlation as ``event``, in log order."""
    queries = [EventQuery(correlation=key) for key in sorted(correlation_keys(event))]
    return [(seq, other) for seq, other in events
            if other.id != event.id and any(q.matches(seq, other) for q in queries)]

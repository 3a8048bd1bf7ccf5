"""`oplab events show`'s logic: walking an event's causation back to its root, and what is correlated with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events import (
    Event,
    FaultInjected,
    FaultReverted,
    InvariantViolated,
    ObsSnapshot,
    TicketClaimed,
    TicketOpened,
    TicketResolved,
    new_event,
)
from events.ids import new_event_id
from oplab.causation import (
    MISSING_NOTE,
    Chain,
    causation_chain,
    correlated_with,
    event_doc,
    index_by_id,
)

RUN = "r20261207t100000-caus"
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
TICKET, FAULT = "tk-00000000c1", "f-00000000c1"


def at(s: float, data, *, source: str = "monitor/m1", correlation: str | None = None,  # type: ignore[no-untyped-def]
       causation: Event | str | None = None) -> Event:
    return new_event(data, run=RUN, source=source, correlation=correlation, causation=causation,
                     time=T0 + timedelta(seconds=s))


def story() -> list[tuple[int, Event]]:
    """A fault, the snapshot that shows it, its violation, and a ticket taken to resolution."""
    injected = at(0, FaultInjected(fault_id=FAULT, kind="node_kill", target="node-1", expires_at=T0),
                  source="chaos/c1", correlation=FAULT)
    snapshot = at(1, ObsSnapshot(subject="ratelimiter", ok=True, observed_at=T0))
    violated = at(1.1, InvariantViolated(invariant="node_down", entity="node-1", first_seen=T0),
                  correlation="node_down:node-1", causation=snapshot)
    opened = at(1.2, TicketOpened(ticket_id=TICKET, invariant="node_down", entity="node-1",
                                  subject="ratelimiter", summary="down", first_seen=T0),
                correlation=TICKET, causation=violated)
    claimed = at(1.3, TicketClaimed(ticket_id=TICKET, agent="agent/a1", policy="rules", lease_until=T0),
                 source="agent/a1", correlation=TICKET, causation=opened)
    resolved = at(2, TicketResolved(ticket_id=TICKET, by="agent"), source="agent/a1", correlation=TICKET,
                  causation=claimed)
    reverted = at(3, FaultReverted(fault_id=FAULT, reason="ttl"), source="chaos/c1", correlation=FAULT,
                  causation=injected)
    return list(enumerate([injected, snapshot, violated, opened, claimed, resolved, reverted], start=10))


def types(stored: list[tuple[int, Event]]) -> list[str]:
    return [e.type for _, e in stored]


def test_a_chain_is_walked_nearest_cause_first_back_to_the_root() -> None:
    events = story()
    resolved = events[5][1]
    chain = causation_chain(resolved, index_by_id(events))
    assert types(chain.causes) == ["ticket.claimed", "ticket.opened", "inv.violated", "obs.snapshot"]
    assert [seq for seq, _ in chain.causes] == [14, 13, 12, 11]
    assert chain.missing is None and chain.loop is None


def test_a_root_has_an_empty_chain() -> None:
    events = story()
    assert causation_chain(events[1][1], index_by_id(events)) == Chain()


def test_a_cause_missing_from_the_log_ends_the_chain_with_its_id() -> None:
    events = story()
    aged_out = [(seq, e) for seq, e in events if e.type != "inv.violated"]  # the violation aged out of the stream
    resolved = events[5][1]
    chain = causation_chain(resolved, index_by_id(aged_out))
    assert types(chain.causes) == ["ticket.claimed", "ticket.opened"]
    assert chain.missing == events[2][1].id
    assert chain.as_json()[-1] == {"missing": events[2][1].id, "note": MISSING_NOTE}
    assert [d["seq"] for d in chain.as_json()[:-1]] == [14, 13]


def test_a_cause_that_is_no_stored_event_ends_the_chain_too() -> None:
    command_id = new_event_id()  # e.g. the id of a command, which is never stored
    snapshot = at(0, ObsSnapshot(subject="ratelimiter", ok=True, observed_at=T0), causation=command_id)
    chain = causation_chain(snapshot, index_by_id([(1, snapshot)]))
    assert chain == Chain(missing=command_id)


def test_a_loop_in_a_corrupt_log_ends_the_walk_instead_of_running_for_ever() -> None:
    first_id, second_id = new_event_id(), new_event_id()
    first = at(0, ObsSnapshot(subject="s", ok=True, observed_at=T0), causation=second_id).model_copy(
        update={"id": first_id})
    second = at(1, ObsSnapshot(subject="s", ok=True, observed_at=T0), causation=first_id).model_copy(
        update={"id": second_id})
    chain = causation_chain(second, index_by_id([(1, first), (2, second)]))
    assert types(chain.causes) == ["obs.snapshot"] and chain.loop == second_id
    assert chain.as_json()[-1]["loop"] == second_id


def test_correlated_events_share_the_events_ticket_fault_or_correlation_and_exclude_itself() -> None:
    events = story()
    resolved, reverted, violated, snapshot = events[5][1], events[6][1], events[2][1], events[1][1]
    assert types(correlated_with(resolved, events)) == ["ticket.opened", "ticket.claimed"]
    assert types(correlated_with(reverted, events)) == ["chaos.fault_injected"]
    assert correlated_with(violated, events) == []  # nothing else about node_down:node-1
    assert correlated_with(snapshot, events) == []  # about nothing in particular


def test_an_event_document_carries_its_sequence_and_its_envelope() -> None:
    seq, resolved = story()[5]
    doc = event_doc(seq, resolved)
    assert doc["seq"] == 15 and doc["id"] == resolved.id and doc["type"] == "ticket.resolved"
    assert doc["causation"] == resolved.causation and doc["data"]["ticket_id"] == TICKET

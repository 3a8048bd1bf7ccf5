"""`oplab events` filters: type globs and domains, a correlation, a source, a range of the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events import FaultInjected, InvariantViolated, ServiceHeartbeat, TicketOpened, TicketResolved, new_event
from oplab.event_query import EventQuery, Position, correlation_keys, parse_position

RUN = "r20261202t100000-qury"
T0 = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)


def at(s: float, data, source: str = "monitor/i1", correlation: str | None = None):  # type: ignore[no-untyped-def]
    return new_event(data, run=RUN, source=source, correlation=correlation, time=T0 + timedelta(seconds=s))


EVENTS = list(enumerate([
    at(0, ServiceHeartbeat(service="monitor", instance="i1", version="t", pid=1, uptime_s=1)),
    at(1, FaultInjected(fault_id="f-0000000001", kind="node_kill", target="node-1", expires_at=T0),
          source="chaos/c1", correlation="f-0000000001"),
    at(2, InvariantViolated(invariant="node_down", entity="node-1", first_seen=T0), correlation="node_down:node-1"),
    at(3, TicketOpened(ticket_id="tk-0000000001", invariant="node_down", entity="node-1", subject="ratelimiter",
                       summary="down", first_seen=T0)),
    at(5, TicketResolved(ticket_id="tk-0000000001", by="agent"), source="agent/a1"),
], start=1))


def shown(query: EventQuery) -> list[int]:
    return [seq for seq, event in EVENTS if query.matches(seq, event)]


def test_types_are_globs_or_domains_and_several_mean_any() -> None:
    assert shown(EventQuery(types=("ticket.*",))) == [4, 5]
    assert shown(EventQuery(types=("ticket",))) == [4, 5]
    assert shown(EventQuery(types=("chaos.fault_*", "inv.violated"))) == [2, 3]
    assert shown(EventQuery(types=("ticket.resolved",))) == [5]
    assert shown(EventQuery()) == [1, 2, 3, 4, 5]
    assert EventQuery(types=("ticket.*",)).types_known({"ticket.opened"})
    assert not EventQuery(types=("tickets.*",)).types_known({"ticket.opened"})


def test_a_correlation_is_the_envelopes_or_the_ticket_or_fault_the_payload_names() -> None:
    assert shown(EventQuery(correlation="tk-0000000001")) == [4, 5]
    assert shown(EventQuery(correlation="f-0000000001")) == [2]
    assert shown(EventQuery(correlation="node_down:node-1")) == [3]


def test_a_source_is_a_service_or_one_instance_of_it() -> None:
    assert shown(EventQuery(source="monitor")) == [1, 3, 4]
    assert shown(EventQuery(source="agent/a1")) == [5]
    assert shown(EventQuery(source="agent/other")) == []


def test_a_range_by_sequence_time_or_age() -> None:
    now = T0 + timedelta(seconds=10)
    assert shown(EventQuery(since=parse_position("3", now=now))) == [3, 4, 5]
    assert shown(EventQuery(until=parse_position("2026-12-02T10:00:02Z", now=now))) == [1, 2, 3]
    assert shown(EventQuery(since=parse_position("10:00:01", now=now, day=T0),
                            until=parse_position("4", now=now))) == [2, 3, 4]
    assert shown(EventQuery(since=parse_position("-6s", now=now))) == [5]
    assert parse_position("-2m", now=now) == Position(at=now - timedelta(minutes=2))


@pytest.mark.parametrize("text", ["yesterday", "-5x", "12:99", ""])
def test_a_bad_position_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"a sequence .* a time .* or an age"):
        parse_position(text, now=T0)


def test_filters_combine_as_and_each_narrowing_the_others() -> None:
    now = T0 + timedelta(seconds=10)
    ticket_by_agent = EventQuery(types=("ticket.*",), source="agent")
    assert shown(ticket_by_agent) == [5]
    assert shown(EventQuery(types=("ticket",), correlation="tk-0000000001", since=parse_position("5", now=now))) == [5]
    assert shown(EventQuery(types=("inv.*", "chaos.*"), source="monitor",
                            until=parse_position("10:00:02", now=now, day=T0))) == [3]
    assert shown(EventQuery(correlation="f-0000000001", source="monitor")) == []  # the fault's events are chaos's
    assert shown(EventQuery(types=("ticket.*",), correlation="tk-0000000001", source="monitor/i1",
                            since=parse_position("-8s", now=now), until=parse_position("4", now=now))) == [4]


def test_correlation_keys_are_the_envelopes_and_the_payloads_ticket_or_fault() -> None:
    assert correlation_keys(EVENTS[1][1]) == {"f-0000000001"}
    assert correlation_keys(EVENTS[2][1]) == {"node_down:node-1"}
    assert correlation_keys(EVENTS[4][1]) == {"tk-0000000001"}
    assert correlation_keys(EVENTS[0][1]) == set()

"""The subject scheme: what each filter builder spells, and which stored subjects it takes in."""

from __future__ import annotations

import pytest

from events import RunFinished, RunStarted, TicketOpened, new_event, new_ticket_id
from events.envelope import utcnow
from events.subjects import (
    ALL_COMMANDS,
    ALL_EVENTS,
    any_run_domain,
    any_run_type,
    command,
    event_subject,
    run_domain,
    run_type,
    service_commands,
    ticket_subject,
)

RUN, OTHER = "r20261202t000000-subj", "r20261202t000001-othr"


def matches(pattern: str, subject: str) -> bool:
    """NATS matching: ``*`` is one token, a final ``>`` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return i == len(want) - 1 and len(got) > i
        if i >= len(got) or token not in ("*", got[i]):
            return False
    return len(want) == len(got)


def stored(data, run: str = RUN) -> str:  # type: ignore[no-untyped-def]
    return event_subject(new_event(data, run=run, source="t"))


def test_the_filters_spell_the_scheme() -> None:
    assert (ALL_EVENTS, ALL_COMMANDS) == ("lab.>", "cmd.>")
    assert any_run_domain("ticket") == "lab.*.ticket.>"
    assert any_run_type(RunStarted) == "lab.*.run.started"
    assert any_run_type(TicketOpened) == "lab.*.ticket.>"  # ticket events are stored by ticket, not by type
    assert run_type(RUN, RunStarted) == f"lab.{RUN}.run.started"
    assert run_type(RUN, TicketOpened) == run_domain(RUN, "ticket") == f"lab.{RUN}.ticket.>"
    assert service_commands("chaos") == "cmd.chaos.>"


def test_a_filter_of_any_run_takes_every_run_and_nothing_else() -> None:
    started = RunStarted(scenario="s", subject="ratelimiter")
    finished = RunFinished(outcome="resolved")
    ticket = TicketOpened(ticket_id=new_ticket_id(), invariant="node_down", entity="node-1", subject="ratelimiter",
                          summary="down", first_seen=utcnow())
    for run in (RUN, OTHER):
        assert matches(any_run_type(RunStarted), stored(started, run))
        assert not matches(any_run_type(RunStarted), stored(finished, run))
        assert matches(any_run_domain("run"), stored(finished, run))
        assert matches(any_run_domain("ticket"), stored(ticket, run))
        assert matches(any_run_type(TicketOpened), ticket_subject(run, "tk-0000000001"))
        assert not matches(any_run_domain("run"), stored(ticket, run))
        assert matches(ALL_EVENTS, stored(ticket, run))
    assert not matches(run_type(RUN, RunStarted), stored(started, OTHER))


def test_a_service_s_commands_take_every_verb_and_scope_of_that_service_only() -> None:
    for scope in (None, RUN):
        assert matches(service_commands("chaos"), command("chaos", "inject", scope))
        assert not matches(service_commands("chaos"), command("director", "next", scope))
        assert matches(ALL_COMMANDS, command("director", "next", scope))
        assert not matches(ALL_COMMANDS, stored(RunFinished(outcome="resolved")))


@pytest.mark.parametrize("bad", ["", "a.b", "*", ">", "a b"])
def test_a_filter_refuses_what_is_no_token(bad: str) -> None:
    for build in (any_run_domain, service_commands):
        with pytest.raises(ValueError, match="not a valid subject token"):
            build(bad)

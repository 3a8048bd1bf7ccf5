"""The NATS subject scheme. Services build subjects only through these functions.

Events:   ``lab.<run>.<domain>.<name>``; ticket events ``lab.<run>.ticket.<ticket_id>``
Commands: ``cmd.<service>.<verb>`` (request/reply, not stored); ``cmd.<service>.<verb>.<scope>``
for the services of one *scoped* lab on a shared NATS (a campaign's parallel trial slots: each
slot's chaos and director answer only their own scope, so no command reaches another slot's run)
"""

from __future__ import annotations

from events.envelope import Event, Payload
from events.ids import is_token

ROOT = "lab"
ALL_EVENTS = f"{ROOT}.>"
"""Every event of every run."""
COMMAND_ROOT = "cmd"
ALL_COMMANDS = f"{COMMAND_ROOT}.>"
"""Every command to every service, of any verb and scope."""
_ANY_RUN = "*"


def _check(*tokens: str) -> None:
    for token in tokens:
        if not is_token(token):
            raise ValueError(f"{token!r} is not a valid subject token")


def event_subject(event: Event) -> str:
    """The subject an event is stored on."""
    data = event.data
    if event.domain == "ticket":
        ticket_id: str = data.ticket_id  # type: ignore[attr-defined]
        return ticket_subject(event.run, ticket_id)
    domain, name = event.type.split(".", 1)
    _check(event.run, domain, name)
    return f"{ROOT}.{event.run}.{domain}.{name}"


def ticket_subject(run: str, ticket_id: str) -> str:
    _check(run, ticket_id)
    return f"{ROOT}.{run}.ticket.{ticket_id}"


def run_events(run: str) -> str:
    """Every event of one run."""
    _check(run)
    return f"{ROOT}.{run}.>"


def run_domain(run: str, domain: str) -> str:
    """Every event of one domain in one run (tickets: every ticket)."""
    _check(run, domain)
    return f"{ROOT}.{run}.{domain}.>"


def run_type(run: str, payload: type[Payload]) -> str:
    """Every event of one type in one run (a ticket type: every ticket event of the run, since
    ticket events are stored by ticket, not by type)."""
    _check(run)
    return _typed(run, payload)


def any_run_domain(domain: str) -> str:
    """Every event of one domain, in any run: ``lab.*.<domain>.>`` (tickets: every ticket of
    every run). What a role may publish is granted domain by domain with these."""
    _check(domain)
    return f"{ROOT}.{_ANY_RUN}.{domain}.>"


def any_run_type(payload: type[Payload]) -> str:
    """Every event of one type, in any run: ``lab.*.<domain>.<name>`` (a ticket type: every
    ticket event of every run, as :func:`run_type`)."""
    return _typed(_ANY_RUN, payload)


def _typed(run: str, payload: type[Payload]) -> str:
    domain, name = payload.TYPE.split(".", 1)
    if domain == "ticket":
        return f"{ROOT}.{run}.ticket.>"
    _check(domain, name)
    return f"{ROOT}.{run}.{domain}.{name}"


def run_of(subject: str) -> str | None:
    parts = subject.split(".")
    return parts[1] if len(parts) >= 3 and parts[0] == ROOT else None


def command(service: str, verb: str, scope: str | None = None) -> str:
    """The subject of ``verb`` on ``service``: unscoped (the lab's one instance of the service),
    or the instance of lab ``scope``."""
    _check(service, verb)
    if not scope:
        return f"{COMMAND_ROOT}.{service}.{verb}"
    _check(scope)
    return f"{COMMAND_ROOT}.{service}.{verb}.{scope}"


def service_commands(service: str) -> str:
    """Every command to one service, of any verb and scope: ``cmd.<service>.>`` (what its
    instances answer, and what a role that may command it may send)."""
    _check(service)
    return f"{COMMAND_ROOT}.{service}.>"

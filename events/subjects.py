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
COMMAND_ROOT = "cmd"


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
    domain, name = payload.TYPE.split(".", 1)
    if domain == "ticket":
        return run_domain(run, "ticket")
    _check(run, domain, name)
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

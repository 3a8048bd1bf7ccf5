"""``oplab tickets list|show``: the ticket log (a projection of the event log)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from oplab.cli.common import JsonOpt, fail, print_listing, progress, stdout_console, table
from oplab.settings import LabSettings
from tickets.state import TicketStatus

AtOpt = Annotated[str | None, typer.Option(
    "--at", help="As they stood at this point of the log: a sequence, a time or an age (-5m)")]

tickets_app = typer.Typer(help="The ticket log (a projection of the event log).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(tickets_app, name="tickets")


@tickets_app.command("list")
def tickets_list(run: Annotated[str | None, typer.Option(help="Only this run (default: all)")] = None,
                 status_: Annotated[TicketStatus | None, typer.Option(
                     "--status", help="Only tickets in this status")] = None,
                 limit: int = 50, as_json: JsonOpt = False, at: AtOpt = None) -> None:
    """Tickets from the ticket log, newest first (``--at``: as they stood then, folded from the log)."""
    from oplab.access import lab_nats_url
    from oplab.tickets import list_tickets

    settings = LabSettings()
    try:
        rows = list_tickets(run=run, status=status_, limit=limit, nats_url=lambda: lab_nats_url(settings),
                            notice=progress, at=at)
    except ValueError as exc:  # a bad position, or one outside the log (OutOfSpan)
        fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in rows]))
        return
    if not rows:
        typer.echo("no tickets")
        return
    print_listing(stdout_console(), table(
        ("ticket", "status", "invariant/entity", "opened", "resolved by / note"),
        ((r.ticket_id, r.status.value, f"{r.invariant}/{r.entity}", f"{r.opened_at:%Y-%m-%d %H:%M:%S}",
          r.resolved_by or r.outcome_note or "") for r in rows)))


@tickets_app.command("show")
def tickets_show(ticket_id: str, as_json: JsonOpt = False, at: AtOpt = None) -> None:
    """One ticket in full (``--at``: as it stood then, folded from the log)."""
    from oplab.access import lab_nats_url
    from oplab.tickets import get_ticket

    settings = LabSettings()
    try:
        row = get_ticket(ticket_id, nats_url=lambda: lab_nats_url(settings), notice=progress, at=at)
    except ValueError as exc:
        fail(str(exc), 2)
    if row is None:
        fail(f"no ticket {ticket_id!r} in the ticket log" + (f" at {at}" if at else ""))
    if as_json:
        typer.echo(row.model_dump_json())
        return
    doc = row.model_dump(mode="json", exclude={"actions"})
    for key, value in doc.items():
        if value is not None:
            typer.echo(f"{key:>13}: {value}")
    for i, action in enumerate(row.actions, start=1):
        args = ", ".join(f"{k}={v!r}" for k, v in action.args.items())
        result = {True: "ok", False: "failed", None: action.status}[action.ok]
        typer.echo(f"{'action ' + str(i):>13}: {action.tool}({args}) -> {result}")

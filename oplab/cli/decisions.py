"""Manual approval: ``approve`` and ``reject`` an action an agent waits on (``OPLAB_APPROVAL=manual``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from oplab.cli.common import JsonOpt, RunOpt, emit, fail
from oplab.settings import LabSettings
from oplab.stack import Stack

ActionArg = Annotated[str, typer.Argument(help="Action id (shown by the agent and the console)")]


def register(app: typer.Typer) -> None:
    app.command()(approve)
    app.command()(reject)


def approve(action_id: ActionArg, run: RunOpt = None, as_json: JsonOpt = False) -> None:
    """Approve an action an agent is waiting on (OPLAB_APPROVAL=manual): the agent runs it."""
    _decide(action_id, approve=True, reason="", run=run, as_json=as_json)


def reject(action_id: ActionArg,
           reason: Annotated[str, typer.Option("--reason", help="Why: the agent (and the model) gets it back")],
           run: RunOpt = None, as_json: JsonOpt = False) -> None:
    """Reject an action an agent is waiting on: it does not run, and the agent is told why."""
    if not reason.strip():
        fail("--reason must say why", 2)
    _decide(action_id, approve=False, reason=reason, run=run, as_json=as_json)


def _decide(action_id: str, *, approve: bool, reason: str, run: str | None, as_json: bool) -> None:
    import getpass

    from events.bus import Bus
    from events.settings import BusSettings
    from oplab.access import lab_nats_url
    from tickets import IllegalTransition
    from tickets.approvals import ActionNotFound, decide, find_action

    settings = LabSettings()
    stack = Stack(settings)
    info = stack.info()
    run = run or (info.run if info is not None and stack.running() else None)
    by = f"cli:{getpass.getuser()}"

    async def go(url: str) -> dict[str, Any]:
        bus = await Bus.connect(BusSettings(nats_url=url), source="oplab-cli", ensure_stream=False)
        try:
            ref = await find_action(bus, action_id, run)
            await decide(bus, ref, approve=approve, by=by, reason=reason)
            return {"run": ref.run, "ticket": ref.ticket_id, "action": action_id, "tool": ref.tool,
                    "decision": "approved" if approve else "rejected", "by": by, "reason": reason or None}
        finally:
            await bus.close()

    try:
        with lab_nats_url(settings, "operator") as url:
            doc = asyncio.run(go(url))
    except (ActionNotFound, IllegalTransition) as exc:
        fail(str(exc))
    emit(doc, as_json, f"{doc['decision']} {action_id} ({doc['tool']} on ticket {doc['ticket']}, run {doc['run']})")

"""``oplab chaos list|inject|revert``: faults by hand (talks to the chaos service)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from oplab.cli.common import JsonOpt, emit, fail, print_listing, scalar, stack, stdout_console, table

chaos_app = typer.Typer(help="Faults: list, inject, revert (talks to the chaos service).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(chaos_app, name="chaos")


def _chaos(verb: str, body: dict[str, Any]) -> dict[str, Any]:
    from events.bus import Bus
    from events.commands import CommandError, request
    from events.settings import BusSettings

    lab = stack()
    url = lab.nats_url(lab.require(), "operator")

    async def call() -> dict[str, Any]:
        bus = await Bus.connect(BusSettings(nats_url=url), source="oplab-cli", ensure_stream=False)
        try:
            return await request(bus.nc, "chaos", verb, body)
        finally:
            await bus.close()

    try:
        return asyncio.run(call())
    except CommandError as exc:
        fail(exc.description, 2 if exc.code == "400" else 1)


@chaos_app.command("list")
def chaos_list(as_json: JsonOpt = False) -> None:
    """Active faults, fault kinds and targets."""
    doc = _chaos("list", {})
    if as_json:
        typer.echo(json.dumps(doc))
        return
    if doc["faults"]:
        print_listing(stdout_console(), table(
            ("fault", "kind", "target", "until"),
            ((f["fault_id"], f["kind"], f["target"], str(f["expires_at"])) for f in doc["faults"]),
            title="active faults"))
    else:
        typer.echo("no active faults")
    typer.echo("kinds: " + ", ".join(k["kind"] for k in doc["kinds"]))
    typer.echo("targets: " + ", ".join(doc["targets"]))


@chaos_app.command("inject")
def chaos_inject(kind: str, target: Annotated[str | None, typer.Option()] = None,
                 ttl: Annotated[float | None, typer.Option(help="seconds")] = None,
                 param: Annotated[list[str] | None, typer.Option(help="k=v, repeatable")] = None,
                 as_json: JsonOpt = False) -> None:
    """Inject a fault now."""
    params: dict[str, Any] = {}
    for item in param or []:
        if "=" not in item:
            fail(f"--param {item!r}: expected k=v", 2)
        k, v = item.split("=", 1)
        params[k] = scalar(v)
    body: dict[str, Any] = {"kind": kind, "params": params}
    if target:
        body["target"] = target
    if ttl:
        body["ttl_s"] = ttl
    doc = _chaos("inject", body)
    f = doc["fault"]
    emit(doc, as_json, f"injected {f['fault_id']}: {f['kind']} on {f['target']} until {f['expires_at']}")


@chaos_app.command("revert")
def chaos_revert(fault_id: Annotated[str | None, typer.Argument()] = None,
                 all_faults: Annotated[bool, typer.Option("--all", help="every active fault")] = False,
                 as_json: JsonOpt = False) -> None:
    """Revert an active fault (or, with --all, every one)."""
    if (fault_id is None) == (not all_faults):
        fail("give a fault id or --all (not both)", 2)
    doc = _chaos("revert", {"all": True} if all_faults else {"fault_id": fault_id})
    text = "reverted " + (", ".join(doc["reverted"]) or "nothing (no active fault)")
    if doc["failed"]:
        text += "; FAILED: " + ", ".join(doc["failed"])
    emit(doc, as_json, text)
    if doc["failed"]:
        raise typer.Exit(1)

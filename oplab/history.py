"""Reading past runs from the log: which runs exist, and a run's events in order."""

from __future__ import annotations

from typing import Any

from events import Event, RunFinished, RunStarted
from events.bus import Bus, Delivered
from events.settings import BusSettings
from events.subjects import ROOT, run_events


async def list_runs(nats_url: str) -> list[dict[str, Any]]:
    """Every run the log knows, oldest first, with its outcome when finished."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-cli")
    runs: dict[str, dict[str, Any]] = {}

    async def handle(d: Delivered) -> None:
        data = d.event.data
        if isinstance(data, RunStarted):
            runs[d.event.run] = {"run": d.event.run, "started": d.event.time.isoformat(), "subject": data.subject,
                                 "scenario": data.scenario, "fault": data.fault, "outcome": None}
        elif isinstance(data, RunFinished) and d.event.run in runs:
            runs[d.event.run]["outcome"] = data.outcome

    try:
        await bus.replay(f"{ROOT}.*.run.*", handle)
    finally:
        await bus.close()
    return list(runs.values())


async def run_history(nats_url: str, run: str, types: set[str] | None = None) -> list[tuple[int, Event]]:
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-cli")
    out: list[tuple[int, Event]] = []

    async def handle(d: Delivered) -> None:
        if types is None or d.event.type in types or d.event.domain in types:
            out.append((d.seq, d.event))

    try:
        await bus.replay(run_events(run), handle)
    finally:
        await bus.close()
    return out


def describe(event: Event) -> str:
    """One short human line for an event."""
    data = event.data.model_dump(mode="json", exclude_defaults=True)
    parts = [f"{k}={_short(v)}" for k, v in data.items()]
    return " ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"

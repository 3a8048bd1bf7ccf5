"""Reading past runs from the log: which runs exist, a run's events in order, one event by sequence or id."""

from __future__ import annotations

from typing import Any

from nats.js.errors import NotFoundError

from events import Event, RunFinished, RunStarted, decode
from events.bus import Bus
from events.replay import Delivered
from events.settings import STREAM_NAME, BusSettings
from events.subjects import ALL_EVENTS, any_run_type, run_events


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
        await bus.replay([any_run_type(RunStarted), any_run_type(RunFinished)], handle)
    finally:
        await bus.close()
    return list(runs.values())


async def run_history(nats_url: str, run: str) -> list[tuple[int, Event]]:
    """Every stored event of ``run`` as (stream sequence, event), in log order
    (:meth:`events.bus.Bus.run_history` on a connection of its own)."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-cli")
    try:
        return await bus.run_history(run)
    finally:
        await bus.close()


class EventNotFound(LookupError):
    """The event asked for is not in the log, or what is stored there is no event; the message says which."""


async def read_event(nats_url: str, ref: str, run: str | None = None) -> tuple[int, Event]:
    """The stored event ``ref`` names - a stream sequence (digits) or an event id - with its sequence.
    An id is looked for in ``run`` if given, else in the whole log. Raises :class:`EventNotFound`."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-cli")
    try:
        if ref.isdigit() and len(ref) < 20:  # event ids are 32 hex digits: a short number is a sequence
            found = await _event_at(bus, int(ref))
        else:
            found = await _event_with_id(bus, ref, run)
    finally:
        await bus.close()
    if run is not None and found[1].run != run:
        raise EventNotFound(f"event {ref} belongs to run {found[1].run}, not {run}")
    return found


async def _event_at(bus: Bus, seq: int) -> tuple[int, Event]:
    try:
        raw = await bus.js.get_msg(STREAM_NAME, seq=seq)
    except NotFoundError:
        state = (await bus.js.stream_info(STREAM_NAME)).state
        if state.messages and seq < state.first_seq:
            raise EventNotFound(f"sequence {seq} has aged out of the log (it holds {state.first_seq}.."
                                f"{state.last_seq})") from None
        held = f"it holds {state.first_seq}..{state.last_seq}" if state.messages else "it is empty"
        raise EventNotFound(f"no message at sequence {seq} ({held})") from None
    decoded = decode(raw.data or b"")
    if not isinstance(decoded, Event):
        raise EventNotFound(f"the message at sequence {seq} (on {raw.subject}) is not an event: {decoded.reason}")
    return seq, decoded


async def _event_with_id(bus: Bus, event_id: str, run: str | None) -> tuple[int, Event]:
    found: list[tuple[int, Event]] = []
    needle = event_id.encode()

    async def look(seq: int, subject: str, data: bytes) -> None:
        if not found and needle in data:  # decode only what can be it
            decoded = decode(data)
            if isinstance(decoded, Event) and decoded.id == event_id:
                found.append((seq, decoded))

    await bus.replay_stored(run_events(run) if run else ALL_EVENTS, look)
    if not found:
        where = f"run {run}" if run else "the log"
        raise EventNotFound(f"no event with id {event_id!r} in {where}"
                            + ("" if run else " (a sequence is a number; `oplab events RUN` lists them)"))
    return found[0]


def describe(event: Event) -> str:
    """One short human line for an event."""
    data = event.data.model_dump(mode="json", exclude_defaults=True)
    parts = [f"{k}={_short(v)}" for k, v in data.items()]
    return " ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"

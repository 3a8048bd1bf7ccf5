"""Whether the log still holds a run from its beginning.

The stream keeps events within limits (``BusSettings.stream_max_age_s`` / ``stream_max_bytes``,
see :func:`events.bus.stream_config`); older events age out from the front. A run whose
``run.started`` is gone, in a stream that has lost its first messages, would tell a partial story
(no fault injection, tickets without their opening). Every reader that shows a run checks it
first: ``oplab events``, ``oplab state``, ``oplab tickets --at`` and the console's replay.

:func:`run_completeness` asks the stream (two direct gets and its info, never a replay);
:func:`judge_completeness` is the pure rule behind it:

- complete: the run's ``run.started`` is stored, or nothing was ever removed (the stream's first
  sequence is 1: a run recorded without a director's ``run.started`` is whole);
- otherwise incomplete, and :attr:`RunCompleteness.notice` says where the log now starts and
  what the stream's limits are.

Lives beside the projections (not in ``oplab``) so the console may use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nats.js.errors import NotFoundError

from events import Event, RunStarted
from events.bus import Bus
from events.codec import decode
from events.settings import STREAM_NAME
from events.subjects import run_events, run_type


@dataclass(frozen=True)
class StreamWindow:
    """What the stream holds now, and the limits that decide what it drops."""

    first_seq: int
    last_seq: int
    max_age_s: float | None = None
    max_bytes: int | None = None
    max_msgs: int | None = None

    def limits(self) -> str:
        """The limits in words (``max age 7d, max bytes 2.0 GiB``), or ``no limits``."""
        parts = []
        if self.max_age_s:
            parts.append(f"max age {_duration(self.max_age_s)}")
        if self.max_bytes and self.max_bytes > 0:
            parts.append(f"max bytes {_size(self.max_bytes)}")
        if self.max_msgs and self.max_msgs > 0:
            parts.append(f"max messages {self.max_msgs}")
        return ", ".join(parts) or "no limits"


@dataclass(frozen=True)
class RunCompleteness:
    """Whether the log holds ``run`` from its beginning (``complete``), and from where it holds it."""

    run: str
    complete: bool
    stream: StreamWindow
    first_seq: int | None = None
    first_time: datetime | None = None
    first_type: str | None = None

    @property
    def notice(self) -> str | None:
        """One line saying what is missing, or None for a complete run."""
        if self.complete:
            return None
        if self.first_seq is None:
            return (f"run {self.run} has aged out of the log entirely (the log now starts at seq "
                    f"{self.stream.first_seq}; stream limits: {self.stream.limits()})")
        since = f" at {self.first_time:%Y-%m-%d %H:%M:%S}" if self.first_time else ""
        return (f"run {self.run} is incomplete: its beginning (run.started) aged out of the log, which now "
                f"starts at seq {self.stream.first_seq} (stream limits: {self.stream.limits()}); the run's "
                f"first stored event is seq {self.first_seq} ({self.first_type or 'undecodable'}{since})")


def judge_completeness(run: str, stream: StreamWindow, *, has_start: bool,
                       first: tuple[int, Event | None] | None) -> RunCompleteness:
    """The rule (see the module doc): ``has_start`` whether the run's ``run.started`` is stored,
    ``first`` the run's first stored event with its sequence (None: nothing of it is stored; an
    undecodable event: its sequence and None)."""
    complete = has_start or stream.first_seq <= 1
    seq, event = first if first is not None else (None, None)
    return RunCompleteness(run=run, complete=complete, stream=stream, first_seq=seq,
                           first_time=event.time if event is not None else None,
                           first_type=event.type if event is not None else None)


async def stream_window(bus: Bus) -> StreamWindow:
    """The stream's current first and last sequence and its limits."""
    info = await bus.js.stream_info(STREAM_NAME)
    config = info.config
    return StreamWindow(first_seq=info.state.first_seq, last_seq=info.state.last_seq,
                        max_age_s=config.max_age, max_bytes=config.max_bytes, max_msgs=config.max_msgs)


async def run_completeness(bus: Bus, run: str) -> RunCompleteness:
    """Ask the stream whether it holds ``run`` from its beginning (see :func:`judge_completeness`)."""
    stream = await stream_window(bus)
    start = max(stream.first_seq, 1)
    has_start = await _first_stored(bus, start, run_type(run, RunStarted)) is not None
    first = None if has_start else await _first_stored(bus, start, run_events(run))
    return judge_completeness(run, stream, has_start=has_start, first=first)


async def _first_stored(bus: Bus, from_seq: int, subject: str) -> tuple[int, Event | None] | None:
    try:
        raw = await bus.js.get_msg(STREAM_NAME, seq=from_seq, subject=subject, next=True)
    except NotFoundError:
        return None
    decoded = decode(raw.data or b"")
    return (raw.seq or 0), decoded if isinstance(decoded, Event) else None


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


async def run_gap(nats_url: str, run: str) -> str | None:
    """:attr:`RunCompleteness.notice` for ``run`` on the NATS at ``nats_url`` (a connection of its own)."""
    from events.settings import BusSettings

    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-cli", ensure_stream=False)
    try:
        return (await run_completeness(bus, run)).notice
    finally:
        await bus.close()

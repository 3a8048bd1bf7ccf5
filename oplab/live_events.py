"""Following a run's events live (``oplab events RUN --follow``).

:func:`tail_run` hands over each event of the run stored after a given sequence, in stream
order, as it is stored, through one ordered consumer (:meth:`events.bus.Bus.replay` with
``follow``). It runs until cancelled (Ctrl-C: ``asyncio.run`` cancels it, and the consumer and
connection are closed on the way out) or, given an ``until`` position, until the run's first
event past it arrives or - for a time or an age - that moment passes. An ``until`` sequence
the log has already reached ends the following at once: nothing later can be at or before it.
If ``on_event`` raises (say, a closed pipe), the following ends and the error is raised again.
It keeps nothing; to watch a run and wait for what happens in it, see :mod:`oplab.run_log`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from events import Event
from events.bus import Bus
from events.envelope import utcnow
from events.replay import Delivered, Replay
from events.settings import BusSettings
from events.subjects import run_events
from oplab.event_query import Position


async def tail_run(nats_url: str, run: str, on_event: Callable[[int, Event], None], *, after_seq: int = 0,
                   until: Position | None = None, on_caught_up: Callable[[], None] | None = None) -> None:
    """Call ``on_event(seq, event)`` for each event of ``run`` stored after ``after_seq`` (see the
    module doc for when it ends); ``on_caught_up`` once what was already stored has been handed over."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-cli")
    passed = asyncio.Event()
    failed: list[Exception] = []

    async def handle(d: Delivered) -> None:
        if d.seq <= after_seq or passed.is_set():
            return
        if until is not None and not until.before_or_at(d.seq, d.event):
            passed.set()
            return
        try:
            on_event(d.seq, d.event)
        except Exception as exc:  # the reader went away: nothing more to hand over
            failed.append(exc)
            passed.set()
        if until is not None and until.seq is not None and d.seq >= until.seq:
            passed.set()  # the bound's own event was the last one to show

    replay: Replay | None = None
    try:
        replay = await bus.replay(run_events(run), handle, from_seq=after_seq + 1, follow=True)
        await replay.caught_up.wait()
        if on_caught_up is not None and not failed:
            on_caught_up()
        if failed:
            raise failed[0]
        if until is not None and until.seq is not None and await bus.last_seq() >= until.seq:
            return
        timeout = None
        if until is not None and until.at is not None:
            timeout = max(0.0, (until.at - utcnow()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(passed.wait(), timeout)  # ``until``'s moment itself is the deadline
        if failed:
            raise failed[0]
    finally:
        if replay is not None:
            await replay.stop()
        await bus.close()

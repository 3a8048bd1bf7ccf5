"""A run's events as they are stored, followed live, with waits on predicates under deadlines:
for whoever watches a run from outside the lab until something happens (the headless demo, a
campaign's trials, crash trials, tests). :func:`follow_run` starts one.

(``oplab events RUN --follow``, which hands events over as they come and keeps none, is
:func:`oplab.live_events.tail_run`.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from events import Event
from events.bus import Bus
from events.replay import Delivered, Replay
from events.subjects import run_events


class RunLog:
    """Every event of one run in stream order (``events``: (sequence, event) pairs). ``on_event``, if
    given, is called with each event once it is kept (the demo prints chapters with it)."""

    def __init__(self, on_event: Callable[[Event], None] | None = None) -> None:
        self.events: list[tuple[int, Event]] = []
        self._on_event = on_event
        self._changed = asyncio.Condition()

    async def handle(self, d: Delivered) -> None:
        self.events.append((d.seq, d.event))
        async with self._changed:
            self._changed.notify_all()
        if self._on_event is not None:  # after the wake-up: a failing callback holds up no waiter
            self._on_event(d.event)

    def find(self, predicate: Callable[[Event], bool]) -> Event | None:
        return next((e for _, e in self.events if predicate(e)), None)

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float, what: str) -> Event:
        """The first event that matches, once it is stored; TimeoutError (naming ``what`` and the
        types seen) if none is within ``timeout`` seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.find(predicate) is not None), timeout)
            except TimeoutError:
                seen = sorted({e.type for _, e in self.events})
                raise TimeoutError(f"no {what} within {timeout}s; saw types {seen}") from None
        found = self.find(predicate)
        assert found is not None  # it was there when the wait ended, and events are never removed
        return found

    def seq_of(self, event: Event) -> int:
        return next(seq for seq, e in self.events if e is event)

    def of_type(self, type_name: str) -> list[Event]:
        return [e for _, e in self.events if e.type == type_name]


async def follow_run(bus: Bus, run: str, on_event: Callable[[Event], None] | None = None
                     ) -> tuple[RunLog, Replay]:
    """A :class:`RunLog` fed from the start of ``run`` and live from then on (stop the replay when done);
    ``on_event`` as for :class:`RunLog`."""
    log = RunLog(on_event)
    replay = await bus.replay(run_events(run), log.handle, follow=True)
    return log, replay

"""Control-case faults: a legitimate traffic burst, run as a task of the process that injects it.

A burst breaks nothing (the control case: no invariant that leads to a mutating remedy may fire).
It runs as an asyncio task of the injecting process (the chaos service), paced (one request per
:meth:`Burst.turn`, a :class:`~subjects.contract.traffic.Pacer`'s: a stall skips what it missed
instead of bursting), for at most its duration. A revert stops it; if that process dies, the
burst dies with it, so an undo derived from the target alone has nothing to stop and a restarted
chaos service has nothing left to undo.

:class:`Burst` is one burst's life: started, stopped, how long it ran. A subject's burst sends its
own traffic (:meth:`Burst.run`), says what proves it took effect (:attr:`Burst.proven`) and tallies
what it did. :class:`BurstFault` is the fault side: the bursts it runs in this process, by id; its
proof, revert and close are those of the burst the undo names.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import secrets
import time
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from subjects.contract.fault_kit import Fault, Injection, Reverted
from subjects.contract.traffic import Pacer


class Burst(abc.ABC):
    """Paced traffic as a task of this process, until stopped or ``duration_s`` have passed.

    ``name`` says what it is, as a revert tells it (``burst on user:alice``)."""

    def __init__(self, name: str, rate: float, duration_s: float) -> None:
        self.name, self.rate, self.duration_s = name, rate, duration_s
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._pacer: Pacer[str] = Pacer(self._stop)
        self._started = 0.0
        self._ended: float | None = None

    def start(self) -> None:
        self._started = time.monotonic()
        self._pacer.add(self.name, rate=self.rate, at=self._started)
        self._task = asyncio.create_task(self._running(), name=self.name)

    async def stop(self) -> None:
        """Stop the traffic and wait for the task to end (stopping twice is harmless)."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def turn(self) -> bool:
        """Wait for the next request's turn at ``rate`` per second (the first at the start); False,
        at once, when the burst is stopped meanwhile or ``duration_s`` have passed since its start."""
        return await self._pacer.next(until=self._started + self.duration_s) is not None

    def timing(self) -> dict[str, Any]:
        """The summary's ``running`` (its task has not ended) and ``ran_s`` (to the millisecond)."""
        end = self._ended if self._ended is not None else time.monotonic()
        return {"running": self._ended is None, "ran_s": round(end - self._started, 3)}

    async def _running(self) -> None:
        try:
            await self.run()
        finally:
            self._ended = time.monotonic()

    @abc.abstractmethod
    async def run(self) -> None:
        """Send one request per :meth:`turn`, until it says there is none left (stopped, or
        ``duration_s`` have passed)."""

    @property
    @abc.abstractmethod
    def proven(self) -> bool:
        """Whether what it did so far proves the burst took effect."""

    @abc.abstractmethod
    def summary(self) -> dict[str, Any]:
        """What it did so far, with :meth:`timing`: the fault's proof."""

    @abc.abstractmethod
    def tally(self) -> str:
        """What it did, in words, for a revert's detail."""


B = TypeVar("B", bound=Burst)


class BurstFault(Fault, Generic[B]):
    """A control-case fault whose injection starts a burst ``B`` in this process (:meth:`launch`).

    A mixin, named before the subject's fault base (``class HotKeyBurst(BurstFault[KeyBurst],
    RateLimiterFault[...])``), whose constructor it passes its arguments on to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bursts: dict[str, B] = {}

    def launch(self, burst: B, target: str) -> Injection:
        """Start ``burst`` on ``target``; its undo names it by a fresh id."""
        burst_id = secrets.token_hex(6)
        self._bursts[burst_id] = burst
        burst.start()
        return Injection(target=target, undo=self.undo_for(burst_id, target))

    def undo_for(self, burst_id: str, target: str) -> dict[str, Any]:
        """The undo of the burst ``burst_id`` on ``target``: ``{"burst_id"}`` (a subject may name more)."""
        return {"burst_id": burst_id}

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        burst = self._bursts.get(str(injection.undo.get("burst_id")))
        return burst.summary() if burst is not None and burst.proven else None

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return self.undo_for("", target)  # no id: the burst died with the process that ran it

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        burst_id = str(undo.get("burst_id", ""))
        burst = self._bursts.pop(burst_id, None)
        if burst is None:
            which = f"burst {burst_id}" if burst_id else "burst"
            return Reverted(f"{which} not running (already stopped, or the process that ran it is gone)",
                            changed=False)
        await burst.stop()
        return Reverted(f"{burst.name} stopped after {burst.timing()['ran_s']:.1f}s: {burst.tally()}")

    async def close(self) -> None:
        for burst in list(self._bursts.values()):
            await burst.stop()
        self._bursts.clear()

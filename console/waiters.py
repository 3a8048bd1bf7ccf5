"""Waiting until a condition holds on something that changes: how callers (tests above all)
synchronise with the console's folds, with a deadline and never with sleeps.

:class:`Waiters` keeps the conditions awaited on one *subject* (a live feed's view, a replay
player). Its owner calls :meth:`Waiters.check` after every change: a condition that now holds
wakes its waiter, and one that raises fails its waiter with that error, never the owner.
:meth:`Waiters.cancel_all` gives up on every waiter (the owner stops).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

SubjectT = TypeVar("SubjectT")


class Waiters(Generic[SubjectT]):
    """The pending ``wait_until`` calls on one subject (see the module doc)."""

    def __init__(self) -> None:
        self._pending: list[tuple[Callable[[SubjectT], bool], asyncio.Future[None]]] = []

    def check(self, subject: SubjectT) -> None:
        """Wake the waiters whose condition holds on ``subject`` now (cheap when none wait)."""
        if not self._pending:
            return
        keep: list[tuple[Callable[[SubjectT], bool], asyncio.Future[None]]] = []
        for condition, fut in self._pending:
            if fut.done():
                continue
            try:
                ok = condition(subject)
            except Exception as exc:  # a broken condition fails its waiter, not the owner
                fut.set_exception(exc)
                continue
            if ok:
                fut.set_result(None)
            else:
                keep.append((condition, fut))
        self._pending = keep

    async def wait_until(self, subject: SubjectT, condition: Callable[[SubjectT], bool], timeout_s: float) -> None:
        """Return once ``condition(subject)`` holds (now, or at a later :meth:`check`);
        raise TimeoutError after ``timeout_s``."""
        if condition(subject):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((condition, fut))
        try:
            await asyncio.wait_for(fut, timeout_s)
        finally:
            self._pending = [(c, f) for c, f in self._pending if f is not fut]

    def cancel_all(self) -> None:
        """Cancel every pending waiter."""
        for _, fut in self._pending:
            fut.cancel()
        self._pending = []

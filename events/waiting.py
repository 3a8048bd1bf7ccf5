"""Waiting for a condition under a deadline: the one poll of the lab.

Where what we wait for sends no event (another process's state, a health check over HTTP, a
view without change notifications, the effect of a fault on the real system), the lab polls,
and every such poll is :func:`wait_until` (or, in code that runs no event loop,
:func:`wait_until_sync`). It lives here, at the bottom layer, so that every layer may use it.

Contract (both variants):

- ``check`` is called at once, then ``interval`` seconds after each call that returned a falsy
  value. The first truthy value it returns is returned.
- The deadline never cuts a wait short: the last call ends at or after ``timeout`` seconds, and
  only a falsy answer from it raises :class:`WaitTimeout`, which names ``what`` (and the last
  answer, when it says more than ``None``/``False``). So a poll may overrun ``timeout`` by up to
  one ``interval`` plus one call.
- An exception raised by ``check`` ends the wait at once and propagates unchanged: a check
  that expects failures (a server still starting) catches them and answers falsy.

The timing is tenacity's (``stop_after_delay`` + ``wait_fixed`` on a falsy result), the same
library that drives the lab's retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from tenacity import AsyncRetrying, RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """``what`` did not happen within ``timeout`` seconds; ``last`` is the check's last answer."""

    def __init__(self, what: str, timeout: float, last: Any = None) -> None:
        shown = "" if last is None or last is False else f" (last: {last!r})"
        super().__init__(f"{what}: not within {timeout:g}s{shown}")
        self.what = what
        self.timeout = timeout
        self.last = last


def _policy(timeout: float, interval: float) -> dict[str, Any]:
    """tenacity's arguments for "call again after ``interval`` while falsy, until ``timeout``"."""
    return {"retry": retry_if_result(lambda value: not value), "stop": stop_after_delay(timeout),
            "wait": wait_fixed(interval)}


def _last(error: RetryError) -> Any:
    return error.last_attempt.result()  # a falsy answer: exceptions never reach here (not retried)


async def wait_until(check: Callable[[], Awaitable[T | None] | T | None], *, timeout: float, interval: float,
                     what: str) -> T:
    """Call ``check`` (a coroutine function, or a plain function: either is awaited as needed) until
    it returns something truthy, and return that (so never None); :class:`WaitTimeout` at the
    deadline (see the module's contract)."""

    async def answer() -> T | None:
        value = check()
        if inspect.isawaitable(value):
            return cast(T, await value)
        return value

    try:
        return cast(T, await AsyncRetrying(**_policy(timeout, interval))(answer))
    except RetryError as exc:
        raise WaitTimeout(what, timeout, _last(exc)) from None


async def pause_unless(event: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``, or less if ``event`` is set meanwhile; whether it is set. A pause (back-off,
    pacing, a presentation's countdown), never a way to wait for a fact.

    Not ``asyncio.wait_for``: in Python 3.11 it can lose a cancellation that races its timeout, leaving
    a task that never ends."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()


def wait_until_sync(check: Callable[[], T | None], *, timeout: float, interval: float, what: str) -> T:
    """:func:`wait_until` for code that runs no event loop (the CLI's launcher): the thread sleeps
    between calls. Never call it on an event loop's thread."""
    try:
        return cast(T, Retrying(**_policy(timeout, interval))(check))
    except RetryError as exc:
        raise WaitTimeout(what, timeout, _last(exc)) from None

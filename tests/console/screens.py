"""A headless urwid screen the tests drive by hand and can wait on.

``urwid.testing.ScriptedScreen`` feeds its next input batch after every draw;
the console redraws on its own (events, ticks), so here input is sent only
when the test calls :meth:`WatchedScreen.press`, and :meth:`wait_for_text`
waits (with a deadline, no sleeps) until a drawn frame contains a string.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from urwid.testing import ScriptedScreen


class WatchedScreen(ScriptedScreen):
    """Records frames; input only via :meth:`press`; waiters on frame text."""

    def __init__(self, size: tuple[int, int] = (80, 24)) -> None:
        super().__init__(size=size, inputs=())
        self._input: Callable[[list[Any], list[int]], Any] | None = None
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []

    def hook_event_loop(self, event_loop: Any, callback: Callable[[list[Any], list[int]], Any]) -> None:
        self._input = callback  # no automatic feeding

    def unhook_event_loop(self, event_loop: Any) -> None:
        self._input = None

    @property
    def text(self) -> str:
        return "\n".join(self.last_text) if self.canvases else ""

    def draw_screen(self, size: tuple[int, int], canvas: Any) -> None:
        super().draw_screen(size, canvas)
        text = self.text
        for needle, fut in self._waiters:
            if not fut.done() and needle in text:
                fut.set_result(None)

    def press(self, *keys: str) -> None:
        assert self._input is not None, "the main loop is not running"
        self._input(list(keys), [])

    async def wait_for_text(self, needle: str, timeout_s: float = 5.0) -> None:
        if needle in self.text:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((needle, fut))
        try:
            await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            raise AssertionError(f"{needle!r} never drawn; last frame:\n{self.text}") from None
        finally:
            self._waiters = [(n, f) for n, f in self._waiters if f is not fut]

    async def wait_until_started(self, timeout_s: float = 5.0) -> None:
        """Until the main loop hooked the screen and drew once."""
        await self.wait_for_text(" quit ", timeout_s)

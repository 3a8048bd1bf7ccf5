"""Approving and rejecting pending actions from the console app, on a headless screen.

Keys go through urwid's real input path (:meth:`WatchedScreen.press`); ``on_decide`` is a plain
callback recording what the app decided.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from console.app import REJECT_REASON, ConsoleApp
from events import TicketActionRequested, TicketClaimed
from projections.lab_view import LabView
from tests.console.screens import WatchedScreen
from tests.console.script import Story

RUN = "r20261124t235800-0a0b"
DEADLINE_S = 5.0

Decision = tuple[str, str, bool, str]


def waiting_view() -> tuple[LabView, Story]:
    """tk-1 claimed, with two restarts waiting for a human: a1 (rl-2) then a2 (rl-3)."""
    s = Story(RUN)
    s.run_started(0)
    s.opened(1)
    s.ticket(1.5, TicketClaimed(ticket_id="tk-1", agent="agent-1", policy="claude", lease_until=s.t(60)))
    for i, (action_id, node) in enumerate((("a1", "rl-2"), ("a2", "rl-3"))):
        s.ticket(2 + i, TicketActionRequested(ticket_id="tk-1", action_id=action_id, tool="restart_node",
                                              args={"node": node}, awaiting_approval=True))
    return s.folded(LabView(RUN)), s


@dataclass
class Console:
    app: ConsoleApp
    screen: WatchedScreen
    task: asyncio.Task[None]
    decisions: list[Decision] = field(default_factory=list)
    decided: asyncio.Event = field(default_factory=asyncio.Event)
    nexts: list[int] = field(default_factory=list)

    async def next_decision(self) -> Decision:
        await asyncio.wait_for(self.decided.wait(), DEADLINE_S)
        self.decided.clear()
        return self.decisions[-1]

    def type(self, text: str) -> None:
        self.screen.press(*text)


@pytest.fixture
async def console() -> AsyncIterator[Console]:
    view, story = waiting_view()
    screen = WatchedScreen((80, 24))
    holder: list[Console] = []

    async def on_decide(ticket_id: str, action_id: str, approve: bool, reason: str) -> None:
        holder[0].decisions.append((ticket_id, action_id, approve, reason))
        holder[0].decided.set()

    async def on_next() -> None:
        holder[0].nexts.append(1)

    app = ConsoleApp(view, on_next, on_decide=on_decide, screen=screen, clock=lambda: story.t(5), tick_s=0)
    c = Console(app, screen, asyncio.create_task(app.run()))
    holder.append(c)
    await screen.wait_until_started(DEADLINE_S)
    await screen.wait_for_text("APPROVE? tk-1 restart_node(node='rl-2') [a1]", DEADLINE_S)
    try:
        yield c
    finally:
        app.quit()
        await asyncio.wait_for(c.task, DEADLINE_S)


async def test_r_asks_for_a_reason_and_rejects_with_what_was_typed(console: Console) -> None:
    console.screen.press("r")
    assert console.app.prompt is not None
    await console.screen.wait_for_text("Reject a1", DEADLINE_S)
    assert "tk-1 restart_node(node='rl-2')" in console.screen.text
    assert "enter  reject" in console.screen.last_text[-1] and "esc  cancel" in console.screen.last_text[-1]
    assert "quit" not in console.screen.last_text[-1]
    console.type("not q during a demo, or a")  # q, a, r and space: all text for the prompt
    console.screen.press("right", "tab", "up", "down")  # keys the editor does not use are swallowed too
    console.app.invalidate()  # a terminal draws after input on idle; this headless screen draws on redraws
    await console.screen.wait_for_text("reason: not q during a demo, or a", DEADLINE_S)
    assert console.decisions == [] and not console.app.quit_requested and console.app.next_requests == 0
    console.screen.press("enter")
    assert await console.next_decision() == ("tk-1", "a1", False, "not q during a demo, or a")
    assert console.app.prompt is None
    await console.screen.wait_for_text("rejected a1", DEADLINE_S)
    assert "Reject a1" not in console.screen.text
    assert console.decisions == [("tk-1", "a1", False, "not q during a demo, or a")]  # never approved
    assert not console.app.quit_requested and not console.task.done()


async def test_esc_cancels_without_rejecting_and_keys_are_the_consoles_again(console: Console) -> None:
    console.screen.press("r")
    console.type("oops")
    console.screen.press("esc")
    assert console.app.prompt is None
    await console.screen.wait_for_text("a1: not rejected", DEADLINE_S)
    assert "Reject a1" not in console.screen.text and "q  quit" in console.screen.last_text[-1]
    assert console.decisions == []
    console.screen.press("a")  # back to the console: a approves
    assert await console.next_decision() == ("tk-1", "a1", True, "")
    console.screen.press("q")
    await asyncio.wait_for(console.task, DEADLINE_S)


@pytest.mark.parametrize("typed", ["", "   "])
async def test_an_empty_reason_falls_back_to_the_default(console: Console, typed: str) -> None:
    console.screen.press("r")
    console.type(typed)
    console.screen.press("enter")
    assert await console.next_decision() == ("tk-1", "a1", False, REJECT_REASON)


async def test_r_rejects_the_highlighted_action(console: Console) -> None:
    console.screen.press("tab", "tab")  # the first tab highlights a1, the second a2
    await console.screen.wait_for_text("▶ APPROVE? tk-1 restart_node(node='rl-3') [a2]", DEADLINE_S)
    console.screen.press("r")
    await console.screen.wait_for_text("Reject a2", DEADLINE_S)
    console.type("wrong node")
    console.screen.press("enter")
    assert await console.next_decision() == ("tk-1", "a2", False, "wrong node")


async def test_keys_sent_to_the_app_while_the_prompt_is_open_go_to_the_prompt(console: Console) -> None:
    console.screen.press("r")
    for key in "qa ":
        assert console.app.handle_key(key)
    assert not console.app.quit_requested and console.decisions == [] and console.app.next_requests == 0
    assert console.app.handle_key("enter")
    assert await console.next_decision() == ("tk-1", "a1", False, "qa")


async def test_without_a_screen_the_prompt_takes_its_keys_through_handle_key() -> None:
    view, _ = waiting_view()
    decisions: list[Decision] = []
    decided = asyncio.Event()

    async def on_decide(ticket_id: str, action_id: str, approve: bool, reason: str) -> None:
        decisions.append((ticket_id, action_id, approve, reason))
        decided.set()

    app = ConsoleApp(view, on_decide=on_decide)
    assert app.handle_key("r")
    assert app.prompt is not None and decisions == []
    for key in [*"not now", "enter"]:
        assert app.handle_key(key)
    await asyncio.wait_for(decided.wait(), DEADLINE_S)
    assert decisions == [("tk-1", "a1", False, "not now")]
    assert app.prompt is None

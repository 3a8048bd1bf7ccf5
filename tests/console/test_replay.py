"""The paced console replay: a real recorded run, stored on a real nats-server and read back, played by
:class:`~console.replay.ReplayPlayer` into the console app on a headless urwid screen.

Keys go through urwid's real input path (:meth:`WatchedScreen.press`). Tests wait on the player's
positions or on drawn frames, with deadlines; a pause is shown to hold by a wait that must time out.
High speeds keep them fast.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from console.app import ConsoleApp
from console.layout import render_text
from console.live import run_console
from console.replay import Recorded, ReplayPlayer
from events import ChapterStarted
from events.bus import Bus
from oplab.replay_from import start_index
from projections.lab_view import LabView
from tests.console.recorded import EVENTS, store_history
from tests.console.screens import WatchedScreen

DEADLINE_S = 10.0
CHAPTER = re.compile(r"chapter (\d)/7")


@pytest.fixture
async def history(bus: Bus, run_id: str) -> list[Recorded]:
    return await store_history(bus, run_id)


@dataclass
class Replay:
    player: ReplayPlayer
    app: ConsoleApp
    screen: WatchedScreen

    @property
    def header(self) -> str:
        return self.screen.last_text[0]

    def chapters_drawn(self) -> list[int]:
        """The chapter number in the header of every distinct frame, in drawing order."""
        out = []
        for canvas in self.screen.canvases:
            match = CHAPTER.search(canvas.decoded_text[0])
            if match:
                out.append(int(match.group(1)))
        return out


@asynccontextmanager
async def replaying(history: list[Recorded], *, speed: float, size: tuple[int, int] = (80, 24),
                    start: int = 0, paused: bool = False) -> AsyncIterator[Replay]:
    """The app on a headless screen with a player on ``history``; the player starts (at ``start``,
    ``paused`` or not) once the first frame is up."""
    view = LabView()
    player = ReplayPlayer(view, history, speed=speed)
    screen = WatchedScreen(size)
    app = ConsoleApp(view, None, live=False, replay=player, screen=screen)
    player.on_change = app.invalidate
    task = asyncio.create_task(app.run())
    try:
        await screen.wait_until_started(DEADLINE_S)
        player.seek(start)
        if paused:
            player.toggle_pause()
        player.start()
        yield Replay(player, app, screen)
    finally:
        app.quit()
        await asyncio.wait_for(task, DEADLINE_S)
        player.stop()


@pytest.fixture
async def paused_at_start(history: list[Recorded]) -> AsyncIterator[Replay]:
    async with replaying(history, speed=1.0, paused=True) as replay:
        yield replay


def chapter_index(history: list[Recorded], chapter: str) -> int:
    return next(i for i, r in enumerate(history)
                if isinstance(r.event.data, ChapterStarted) and r.event.data.chapter == chapter)


async def test_the_replay_shows_an_early_chapter_first_and_the_summary_last(history: list[Recorded]) -> None:
    async with replaying(history, speed=8.0) as replay:
        await replay.player.wait_until(lambda p: p.ended, DEADLINE_S)
        await replay.screen.wait_for_text("END", DEADLINE_S)
        drawn = replay.chapters_drawn()
        assert drawn[0] <= 2, drawn
        assert drawn[-1] == 7 and "7/7 · Summary" in replay.screen.text
        assert drawn == sorted(drawn)  # the story is told in order
        assert replay.player.view.events == EVENTS


async def test_pause_holds_the_position_while_events_would_have_played(history: list[Recorded]) -> None:
    inject = chapter_index(history, "inject")
    async with replaying(history, speed=64.0) as replay:
        player = replay.player
        await player.wait_until(lambda p: p.cursor > inject, DEADLINE_S)
        replay.screen.press(" ")
        held, version = player.cursor, player.view.version
        await replay.screen.wait_for_text("PAUSED", DEADLINE_S)
        assert f"#{player.seq} " in replay.header
        # at x64 the rest of the run (under 10 s of log time) would play within 0.2 s
        assert (history[-1].event.time - history[held].event.time).total_seconds() / 64 < 0.2
        with pytest.raises(TimeoutError):
            await player.wait_until(lambda p: p.cursor != held, 0.5)
        assert player.view.version == version and player.clock() == player.view.now()
        replay.screen.press(" ")
        await player.wait_until(lambda p: p.ended, DEADLINE_S)
        assert player.view.events == EVENTS


async def test_step_folds_exactly_one_event_and_moves_to_the_next_sequence(paused_at_start: Replay) -> None:
    replay, player, history = paused_at_start, paused_at_start.player, paused_at_start.player.history
    for expected in range(1, 4):
        replay.screen.press("right")
        assert player.cursor == expected and player.seq == history[expected - 1].seq
        assert player.view.events == expected
        await replay.screen.wait_for_text(f"#{history[expected - 1].seq} ", DEADLINE_S)
        assert "PAUSED" in replay.header
    assert player.clock() == max(r.event.time for r in history[:3])  # the panels' clock: the position's log time


async def test_step_while_playing_pauses_after_the_one_event(history: list[Recorded]) -> None:
    async with replaying(history, speed=0.25) as replay:
        player = replay.player
        await player.wait_until(lambda p: p.cursor >= 1, DEADLINE_S)  # the first event plays at once
        before = player.cursor
        replay.screen.press("right")
        assert player.cursor == before + 1 and player.paused
        with pytest.raises(TimeoutError):  # and stays there
            await player.wait_until(lambda p: p.cursor != before + 1, 0.3)


async def test_n_lands_on_the_next_chapter_and_keeps_the_pause(paused_at_start: Replay) -> None:
    replay, player = paused_at_start, paused_at_start.player
    for number, chapter, title in ((1, "welcome", "Welcome to Operator Lab"), (2, "baseline", "A healthy baseline"),
                                   (3, "inject", "Breaking it")):
        replay.screen.press("n")
        assert player.position is not None and isinstance(player.position.event.data, ChapterStarted)
        assert player.cursor == chapter_index(player.history, chapter) + 1
        assert player.paused
        await replay.screen.wait_for_text(f"{number}/7 · {title}", DEADLINE_S)
        assert "PAUSED" in replay.header


async def test_n_after_the_last_chapter_says_so_and_folds_nothing(history: list[Recorded]) -> None:
    summary = chapter_index(history, "summary")
    async with replaying(history, speed=1.0, start=summary + 1, paused=True) as replay:
        replay.screen.press("n")
        assert replay.player.cursor == summary + 1
        await replay.screen.wait_for_text("no later chapter", DEADLINE_S)


async def test_speed_changes_show_in_the_header_doubling_and_halving_within_bounds(paused_at_start: Replay
                                                                                   ) -> None:
    replay = paused_at_start
    replay.screen.press("+")
    await replay.screen.wait_for_text("x2 PAUSED", DEADLINE_S)
    replay.screen.press("+", "+")
    await replay.screen.wait_for_text("x8 PAUSED", DEADLINE_S)
    replay.screen.press("-")
    await replay.screen.wait_for_text("x4 PAUSED", DEADLINE_S)
    replay.screen.press(*"+" * 10)
    await replay.screen.wait_for_text("x64 PAUSED", DEADLINE_S)
    replay.screen.press(*"-" * 12)
    await replay.screen.wait_for_text("x0.25 PAUSED", DEADLINE_S)
    assert replay.player.speed == 0.25


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_the_final_screen_equals_the_live_consoles_final_screen(history: list[Recorded],
                                                                      size: tuple[int, int]) -> None:
    live = LabView()
    for r in history:
        live.apply(r.event)
    assert live.now() is not None
    expected = render_text(live, size, live.now())
    async with replaying(history, speed=64.0, size=size) as replay:
        await replay.player.wait_until(lambda p: p.ended, DEADLINE_S)
        await replay.screen.wait_for_text("END", DEADLINE_S)
        shown = [row.rstrip() for row in replay.screen.last_text]
        assert "REPLAY" in shown[0] and f"#{history[-1].seq}" in shown[0]
        assert shown[1:-1] == expected[1:-1]  # every panel; the header and footer say replay instead of live
        assert shown[0].endswith(expected[0].rsplit(" ", 1)[-1])  # the same elapsed time
        assert replay.player.clock() == live.now()


@pytest.mark.parametrize("chapter", ["detection", "remediation"])
async def test_the_screen_at_a_paused_position_equals_the_live_screen_at_that_moment(history: list[Recorded],
                                                                                     chapter: str) -> None:
    index = chapter_index(history, chapter) + 3  # a few events into the chapter
    live = LabView()
    for r in history[:index]:
        live.apply(r.event)
    assert live.now() is not None
    expected = render_text(live, (200, 60), live.now())
    async with replaying(history, speed=1.0, size=(200, 60), start=index, paused=True) as replay:
        await replay.screen.wait_for_text(f"REPLAY #{history[index - 1].seq} ", DEADLINE_S)
        assert [row.rstrip() for row in replay.screen.last_text][1:-1] == expected[1:-1]


async def test_the_console_replays_from_a_chapter_with_everything_before_it_folded(bus: Bus, run_id: str,
                                                                                  history: list[Recorded]) -> None:
    start = start_index(history, "detection")
    screen = WatchedScreen((80, 24))
    console = asyncio.create_task(run_console(bus, run_id, replay=True, replay_speed=0.25, history=history,
                                              start=start, screen=screen))
    try:
        await screen.wait_for_text("4/7 · Detection", DEADLINE_S)
        assert "node_kill node-1" in screen.text  # the fault injected before the chapter is on screen
        drawn = [int(m.group(1)) for c in screen.canvases if (m := CHAPTER.search(c.decoded_text[0]))]
        assert drawn and min(drawn) == 4  # no earlier chapter was ever played
    finally:
        screen.press("q")
        view = await asyncio.wait_for(console, DEADLINE_S)
    assert view.events >= start


async def test_the_console_reads_the_run_from_the_bus_and_speed_zero_jumps_to_the_end(
        bus: Bus, run_id: str, history: list[Recorded]) -> None:
    screen = WatchedScreen((200, 60))
    console = asyncio.create_task(run_console(bus, run_id, replay=True, replay_speed=0, screen=screen))
    await screen.wait_for_text("END", DEADLINE_S)
    assert f"REPLAY #{history[-1].seq} " in screen.last_text[0]
    assert screen.last_text[-1].lstrip().startswith("q  quit")  # at the end only q is left to press
    screen.press("q")
    view = await asyncio.wait_for(console, DEADLINE_S)
    assert view.events == EVENTS


def test_a_player_refuses_a_speed_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ReplayPlayer(LabView(), [], speed=0)


def test_the_header_label_says_where_how_fast_and_whether_paused_or_ended() -> None:
    from console.replay import ReplayStatus

    at = datetime(2026, 12, 1, 20, 2, 28, 706_551, tzinfo=UTC)
    assert ReplayStatus(58, at, 4.0, paused=True, ended=False).label() == "REPLAY #58 20:02:28.70 x4 PAUSED"
    assert ReplayStatus(58, at, 0.25, paused=False, ended=False).label(compact=True) == "REPLAY #58 20:02:28 x0.25"
    assert ReplayStatus(108, at, 4.0, paused=False, ended=True).label() == "REPLAY #108 20:02:28.70 END"
    assert ReplayStatus(None, None, 1.0, paused=False, ended=False, loaded=False).label() == "REPLAY loading…"


async def test_a_notice_given_to_the_console_is_on_screen_from_the_start(bus: Bus, run_id: str,
                                                                        history: list[Recorded]) -> None:
    """A replay of a run whose beginning aged out says so (oplab.demo.open_console passes the notice)."""
    screen = WatchedScreen((200, 60))
    notice = f"run {run_id} is incomplete: its beginning aged out of the log"
    console = asyncio.create_task(run_console(bus, run_id, replay=True, replay_speed=0.25, history=history,
                                              screen=screen, notice=notice))
    try:
        await screen.wait_for_text(notice, DEADLINE_S)
    finally:
        screen.press("q")
        await asyncio.wait_for(console, DEADLINE_S)

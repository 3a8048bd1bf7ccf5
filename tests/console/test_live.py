"""The console's fold and screen fed by real events on a real nats-server (JetStream)."""

from __future__ import annotations

import asyncio

from console.live import LiveFeed, run_console
from events.bus import Bus
from projections.lab_view import LabView
from tests.console.screens import WatchedScreen
from tests.console.script import node_kill_story

DEADLINE_S = 10.0


def resolved(view: LabView) -> bool:
    return view.timeline.summary().outcome == "resolved"


async def test_feed_starts_on_an_empty_run_then_folds_live_events(bus: Bus, run_id: str) -> None:
    feed = LiveFeed(bus, run_id)
    changes: list[int] = []
    feed.on_change = lambda: changes.append(feed.view.version)
    await feed.start(follow=True)
    await asyncio.wait_for(feed.caught_up.wait(), DEADLINE_S)
    assert feed.view.version == 0
    story = node_kill_story(run_id)
    try:
        await bus.publish_batch(story.events)
        await feed.wait_until(resolved, DEADLINE_S)
        await feed.wait_until(lambda v: v.events == len(story.events), DEADLINE_S)
    finally:
        await feed.stop()
    view = feed.view
    summary = view.timeline.summary()
    assert (summary.run, summary.ticket, summary.resolved_by, summary.ttd_s, summary.ttm_s) == (
        run_id, "tk-1", "agent", 1.2, 2.5)
    assert view.tickets["tk-1"].status == "resolved"
    assert [s.kind for s in view.ticket_steps("tk-1")][:2] == ["opened", "claimed"]
    assert changes[-1] == len(story.events)


async def test_feed_folds_history_then_follows(bus: Bus, run_id: str) -> None:
    story = node_kill_story(run_id)
    half = len(story.events) // 2
    await bus.publish_batch(story.events[:half])
    feed = LiveFeed(bus, run_id)
    await feed.start(follow=True)
    try:
        await asyncio.wait_for(feed.caught_up.wait(), DEADLINE_S)
        assert feed.view.events == half
        await bus.publish_batch(story.events[half:])
        await feed.wait_until(lambda v: v.events == len(story.events), DEADLINE_S)
    finally:
        await feed.stop()
    assert resolved(feed.view)


async def test_feed_ignores_other_runs(bus: Bus, run_id: str) -> None:
    other = node_kill_story(run_id + "-other")
    mine = node_kill_story(run_id)
    feed = LiveFeed(bus, run_id)
    await feed.start(follow=True)
    try:
        await bus.publish_batch(other.events)
        await bus.publish_batch(mine.events[:3])
        await feed.wait_until(lambda v: v.events == 3, DEADLINE_S)
    finally:
        await feed.stop()
    assert feed.view.run == run_id and feed.view.events == 3


async def test_wait_until_times_out_with_a_deadline(bus: Bus, run_id: str) -> None:
    feed = LiveFeed(bus, run_id)
    await feed.start(follow=True)
    try:
        try:
            await feed.wait_until(lambda v: v.events > 0, 0.2)
        except TimeoutError:
            pass
        else:
            raise AssertionError("wait_until should have timed out")
    finally:
        await feed.stop()


async def test_run_console_live_draws_events_and_quits_on_q(bus: Bus, run_id: str) -> None:
    screen = WatchedScreen((80, 24))
    asked = asyncio.Event()

    async def on_next() -> None:
        asked.set()

    console = asyncio.create_task(run_console(bus, run_id, on_next=on_next, screen=screen))
    await screen.wait_until_started(DEADLINE_S)
    assert f"Waiting for events of run {run_id}" in screen.text  # an empty log starts cleanly
    await bus.publish_batch(node_kill_story(run_id).events)
    await screen.wait_for_text("tk-1 resolved", DEADLINE_S)
    await screen.wait_for_text("resolved by agent (agent-1)", DEADLINE_S)
    screen.press(" ")
    await asyncio.wait_for(asked.wait(), DEADLINE_S)
    screen.press("q")
    view = await asyncio.wait_for(console, DEADLINE_S)
    assert resolved(view)


async def test_run_console_replay_shows_the_stored_log(bus: Bus, run_id: str) -> None:
    story = node_kill_story(run_id)
    await bus.publish_batch(story.events)
    screen = WatchedScreen((200, 60))
    console = asyncio.create_task(run_console(bus, run_id, replay=True, screen=screen))
    await screen.wait_for_text("resolved by agent (agent-1)", DEADLINE_S)
    assert "replay" in screen.last_text[-1]
    assert "space" not in screen.last_text[-1]
    assert "last: node_kill rl-2" in screen.text and "reverted (explicit)" in screen.text
    screen.press("q")
    view = await asyncio.wait_for(console, DEADLINE_S)
    assert view.events == len(story.events)


async def test_run_console_paced_replay(bus: Bus, run_id: str) -> None:
    story = node_kill_story(run_id)
    await bus.publish_batch(story.events)
    screen = WatchedScreen((80, 24))
    console = asyncio.create_task(run_console(bus, run_id, replay=True, replay_speed=1000.0, screen=screen))
    await screen.wait_for_text("tk-1 resolved", DEADLINE_S)
    screen.press("q")
    view = await asyncio.wait_for(console, DEADLINE_S)
    assert view.events == len(story.events)


class _ViewThatFailsOnTickets(LabView):
    """A view with a fold bug, to show the feed survives one."""

    def apply(self, event):  # type: ignore[no-untyped-def]
        if event.type == "ticket.opened":
            raise RuntimeError("fold bug")
        return super().apply(event)


async def test_a_fold_error_is_logged_and_the_feed_goes_on(bus: Bus, run_id: str) -> None:
    story = node_kill_story(run_id)
    feed = LiveFeed(bus, run_id, _ViewThatFailsOnTickets(run_id))
    await feed.start(follow=True)
    try:
        await bus.publish_batch(story.events)
        await feed.wait_until(lambda v: v.events == len(story.events) - 1, DEADLINE_S)
    finally:
        await feed.stop()
    assert feed.errors == 1

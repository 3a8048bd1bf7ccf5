"""Watching a run (:func:`oplab.run_log.follow_run`) against a real nats-server: history then live
events, each handed to ``on_event`` once kept, and waits that end on the event or at the deadline."""

from __future__ import annotations

import asyncio

import pytest

from events import ChapterStarted, Event, RunFinished
from events.bus import Bus
from oplab.run_log import follow_run


def chapter(bus: Bus, run: str, index: int) -> Event:
    return bus.event(ChapterStarted(scenario="s", index=index, total=3, chapter=f"c{index}",
                                    title=f"Chapter {index}", narration="."), run=run)


async def test_history_then_live_events_are_kept_in_order_and_each_handed_to_on_event(
        bus: Bus, run_id: str) -> None:
    seen: list[str] = []
    first = chapter(bus, run_id, 0)
    await bus.publish(first)
    log, replay = await follow_run(bus, run_id, on_event=lambda e: seen.append(e.id))
    try:
        await log.wait_for(lambda e: e.id == first.id, 5, "the stored chapter")
        later = [chapter(bus, run_id, 1), bus.event(RunFinished(outcome="resolved"), run=run_id)]
        await bus.publish_batch(later)
        finished = await log.wait_for(lambda e: isinstance(e.data, RunFinished), 5, "run.finished")
    finally:
        await replay.stop()
    assert finished.id == later[-1].id
    assert seen == [e.id for _, e in log.events] == [first.id, *(e.id for e in later)]
    assert [seq for seq, _ in log.events] == sorted(seq for seq, _ in log.events)


async def test_a_wait_with_nothing_to_match_ends_at_its_deadline_naming_what_it_saw(bus: Bus, run_id: str) -> None:
    await bus.publish(chapter(bus, run_id, 0))
    log, replay = await follow_run(bus, run_id)
    try:
        await asyncio.wait_for(replay.caught_up.wait(), 5)
        with pytest.raises(TimeoutError, match=r"no run.finished within 0.2s; saw types \['director.chapter_started'"):
            await log.wait_for(lambda e: isinstance(e.data, RunFinished), 0.2, "run.finished")
    finally:
        await replay.stop()

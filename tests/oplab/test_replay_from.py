"""Where `oplab console --replay --from X` starts: a chapter (number, id or title), a sequence, a time or
an age before the run's end, in the real recorded run (tests/fixtures/v1-node-kill-claude.jsonl)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from console.replay import Recorded
from events import ChapterStarted
from oplab.replay_from import BadStart, start_index
from tests.console.recorded import file_history

HISTORY = file_history()


def chapter_at(index: int) -> str | None:
    """The chapter the screen shows once ``HISTORY[:index]`` is folded."""
    started = [r.event.data.chapter for r in HISTORY[:index] if isinstance(r.event.data, ChapterStarted)]
    return started[-1] if started else None


def test_a_chapter_by_id_title_or_number_opens_on_that_chapter_with_everything_before_folded() -> None:
    index = start_index(HISTORY, "detection")
    assert chapter_at(index) == "detection"
    assert HISTORY[index - 1].event.type == ChapterStarted.TYPE  # its start is the last event folded at once
    assert start_index(HISTORY, "Detection") == start_index(HISTORY, "4") == index
    assert [e.event.type for e in HISTORY[:index]].count("chaos.fault_injected") == 1
    assert "ticket.opened" not in [e.event.type for e in HISTORY[:index]]


def test_a_sequence_plays_from_the_event_at_it() -> None:
    assert HISTORY[start_index(HISTORY, "58")].seq == 58
    assert start_index(HISTORY, "seq:1") == 0  # a small sequence, which a chapter number would shadow
    assert chapter_at(start_index(HISTORY, "1")) == "welcome"  # chapter 1, not sequence 1


def test_a_time_or_an_age_before_the_runs_end_plays_from_the_first_event_at_or_after_it() -> None:
    ticket = next(r for r in HISTORY if r.event.type == "ticket.opened")
    assert HISTORY[start_index(HISTORY, ticket.event.time.isoformat())].event.time >= ticket.event.time
    assert start_index(HISTORY, ticket.event.time.strftime("%H:%M:%S.%f")) <= HISTORY.index(ticket)
    end = max(r.event.time for r in HISTORY)
    index = start_index(HISTORY, "-1s")
    assert HISTORY[index].event.time >= end - timedelta(seconds=1)
    assert HISTORY[index - 1].event.time < end - timedelta(seconds=1)


@pytest.mark.parametrize(("text", "says"), [
    ("nonsense", "chapters: 1 welcome, 2 baseline, 3 inject, 4 detection"),
    ("999", "after the end of run r20261201t200214-278a (seq 108)"),
    ("2030-01-01T00:00:00Z", "after the end of run"),
])
def test_a_start_that_names_nothing_in_the_run_says_what_the_run_has(text: str, says: str) -> None:
    with pytest.raises(BadStart) as refused:
        start_index(HISTORY, text)
    assert says in str(refused.value)


def test_a_chapter_number_that_never_started_is_refused() -> None:
    without_summary: list[Recorded] = [r for r in HISTORY if not (
        isinstance(r.event.data, ChapterStarted) and r.event.data.chapter == "summary")]
    with pytest.raises(BadStart, match="chapter 7 never started"):
        start_index(without_summary, "7")

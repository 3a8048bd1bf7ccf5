"""events.waiting: the one poll of the lab (its contract is the module docstring)."""

from __future__ import annotations

import asyncio
import time

import pytest

from events.waiting import WaitTimeout, pause_unless, wait_until, wait_until_sync


class Answers:
    """A check that answers from a script (then its last answer for ever), counting its calls and
    noting when each ended."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.ended: list[float] = []

    def __call__(self) -> object:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        self.ended.append(time.monotonic())
        return answer


async def test_returns_the_first_truthy_answer_of_a_coroutine_check() -> None:
    check = Answers(None, 0, "", "here", "later")

    async def answer() -> object:
        await asyncio.sleep(0)  # a real coroutine: it is awaited, not taken for a truthy value
        return check()

    assert await wait_until(answer, timeout=10, interval=0.001, what="the answer") == "here"
    assert len(check.ended) == 4


async def test_a_plain_function_is_a_check_too() -> None:
    check = Answers(False, [1])
    assert await wait_until(check, timeout=10, interval=0.001, what="a list") == [1]
    assert len(check.ended) == 2


async def test_the_deadline_names_what_was_awaited_and_the_last_answer() -> None:
    check = Answers([])
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        await wait_until(check, timeout=0.05, interval=0.01, what="the cluster to settle")
    assert str(caught.value) == "the cluster to settle: not within 0.05s (last: [])"
    assert caught.value.what == "the cluster to settle" and caught.value.last == []
    assert isinstance(caught.value, TimeoutError)
    # never cut short: the answer that gave up came at or after the deadline, and was not the first
    assert check.ended[-1] - started >= 0.05 and len(check.ended) > 1


async def test_a_falsy_none_is_not_shown_as_the_last_answer() -> None:
    with pytest.raises(WaitTimeout, match=r"^nothing: not within 0\.01s$"):
        await wait_until(lambda: None, timeout=0.01, interval=0.005, what="nothing")


async def test_a_failing_check_ends_the_wait_at_once_with_its_own_error() -> None:
    calls = 0

    async def broken() -> bool:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError("nobody there")

    with pytest.raises(ConnectionRefusedError, match="nobody there"):
        await wait_until(broken, timeout=10, interval=0.001, what="a broken check")
    assert calls == 1


def test_the_sync_variant_keeps_the_same_contract() -> None:
    check = Answers(None, None, 3)
    assert wait_until_sync(check, timeout=10, interval=0.001, what="three") == 3
    assert len(check.ended) == 3
    stuck = Answers(0)
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"^zero: not within 0\.03s \(last: 0\)$"):
        wait_until_sync(stuck, timeout=0.03, interval=0.01, what="zero")
    assert stuck.ended[-1] - started >= 0.03
    with pytest.raises(KeyError):
        wait_until_sync(lambda: {}["x"], timeout=10, interval=0.001, what="a key")


async def test_a_pause_ends_early_when_its_event_is_set_and_says_so() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_soon(stop.set)
    async with asyncio.timeout(30):  # a deadline for the test, far below the 3600 s pause
        assert await pause_unless(stop, 3600) is True


async def test_a_pause_that_runs_out_says_its_event_was_not_set() -> None:
    assert await pause_unless(asyncio.Event(), 0.01) is False


async def test_a_cancelled_pause_is_cancelled_not_swallowed() -> None:
    pause = asyncio.create_task(pause_unless(asyncio.Event(), 3600))
    await asyncio.sleep(0)  # let it start waiting
    pause.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pause

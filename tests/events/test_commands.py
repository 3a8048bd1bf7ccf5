"""events.commands.request against a real nats-server: waiting for a service that is away, and the
errors that surface (503 when nobody answers in time, 504 when the service is too slow)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from events.bus import Bus
from events.commands import CommandError, request
from events.settings import BusSettings
from events.subjects import command
from events.waiting import wait_until


@pytest.fixture
async def requester(bus_settings: BusSettings) -> AsyncIterator[Client]:
    """A connection of its own, so that its statistics count only the test's requests."""
    nc = await nats.connect(bus_settings.nats_url)
    yield nc
    await nc.close()


async def test_a_service_that_never_comes_fails_with_503_once_the_wait_is_over(requester: Client,
                                                                                run_id: str) -> None:
    # asked every 0.1 s: a 3 s wait asks about thirty times, so once it has sent three requests it is
    # still waiting (with room for a starved machine's stalls), and it goes on asking until the wait is over
    asking = asyncio.create_task(request(requester, "chaos", "list", wait_for_service_s=3.0, scope=run_id))
    await wait_until(lambda: requester.stats["out_msgs"] >= 3 or asking.done(), timeout=10, interval=0.01,
                     what="the request asked three times (nobody there)")
    assert not asking.done(), "gave up before the wait was over"
    async with asyncio.timeout(10):  # the deadline: a request that never gives up fails here
        with pytest.raises(CommandError) as caught:
            await asking
    assert (caught.value.code, caught.value.description) == ("503", "the chaos service is not running")
    assert requester.stats["out_msgs"] > 3, "stopped asking after a fixed few attempts, not when the wait was over"


async def test_a_service_that_subscribes_while_the_request_waits_answers_it(requester: Client, bus: Bus,
                                                                             run_id: str) -> None:
    asking = asyncio.create_task(request(requester, "chaos", "list", {"n": 1}, wait_for_service_s=30, scope=run_id))
    await wait_until(lambda: requester.stats["out_msgs"] >= 2, timeout=10, interval=0.01,
                     what="the request asked twice (nobody there yet)")

    async def answer(msg: Msg) -> None:
        await msg.respond(json.dumps({"echo": json.loads(msg.data)}).encode())

    sub = await bus.nc.subscribe(command("chaos", "list", run_id), cb=answer)
    try:
        assert await asyncio.wait_for(asking, 10) == {"echo": {"n": 1}}
    finally:
        await sub.unsubscribe()


async def test_a_service_too_slow_to_answer_fails_with_504_and_is_not_asked_again(requester: Client, bus: Bus,
                                                                                 run_id: str) -> None:
    asked = 0

    async def silent(_msg: Msg) -> None:
        nonlocal asked
        asked += 1

    sub = await bus.nc.subscribe(command("chaos", "list", run_id), cb=silent)
    await bus.nc.flush()
    try:
        with pytest.raises(CommandError) as caught:
            await request(requester, "chaos", "list", timeout=0.2, scope=run_id)
        assert caught.value.code == "504" and "did not answer within 0.2s" in caught.value.description
        assert asked == 1  # it got the one request, and was not asked again
    finally:
        await sub.unsubscribe()

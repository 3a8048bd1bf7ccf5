"""The bus survives a NATS restart: publishing works again once the server is back."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from nats.js.errors import NoStreamResponseError

from events import ServiceHeartbeat, new_run_id
from events.bus import Bus
from events.settings import BusSettings
from events.subjects import run_events
from events.waiting import wait_until
from oplab.infra import free_port, start_nats


async def test_publish_resumes_after_nats_restarts(tmp_path: Path) -> None:
    port = free_port()
    server = start_nats(tmp_path / "nats", port=port)
    run = new_run_id()
    bus = await Bus.connect(BusSettings(nats_url=server.url), source="t")
    reconnected = asyncio.Event()
    bus.nc._reconnected_cb = _set(reconnected)  # observe the client's own reconnect
    try:
        beat = ServiceHeartbeat(service="t", instance="i", version="1", pid=1, uptime_s=0)
        await bus.publish(bus.event(beat, run=run))
        server.stop()
        server = start_nats(tmp_path / "nats", port=port)
        await asyncio.wait_for(reconnected.wait(), 15)
        await bus.publish(bus.event(beat, run=run))
        got = []

        async def handle(d):  # type: ignore[no-untyped-def]
            got.append(d)

        await bus.replay(run_events(run), handle)
        assert len(got) == 2, "the event from before the restart survived in the file store"
    finally:
        await bus.close()
        server.stop()


async def test_a_followed_replay_keeps_delivering_across_a_nats_restart(tmp_path: Path) -> None:
    port = free_port()
    server = start_nats(tmp_path / "nats", port=port)
    run = new_run_id()
    bus = await Bus.connect(BusSettings(nats_url=server.url), source="t")
    writer = await Bus.connect(BusSettings(nats_url=server.url), source="w")
    got: list[int] = []
    second = asyncio.Event()

    async def handle(d):  # type: ignore[no-untyped-def]
        got.append(d.event.data.pid)
        if d.event.data.pid == 2:
            second.set()

    beat = ServiceHeartbeat(service="t", instance="i", version="1", pid=1, uptime_s=0)
    try:
        await writer.publish(writer.event(beat, run=run))
        feed = await bus.replay(run_events(run), handle, follow=True)
        await asyncio.wait_for(feed.caught_up.wait(), 10)
        server.stop()
        server = start_nats(tmp_path / "nats", port=port)
        await writer.publish(writer.event(beat.model_copy(update={"pid": 2}), run=run), retry_for_s=20)
        await asyncio.wait_for(second.wait(), 30)
        await feed.stop()
        assert got == [1, 2]
    finally:
        await bus.close()
        await writer.close()
        server.stop()


def _retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.name == "events.bus" and r.getMessage().startswith("publish retry"))


async def test_a_publish_is_retried_until_the_stream_is_there(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="events.bus")
    server = start_nats(tmp_path / "nats", port=free_port())
    bus = await Bus.connect(BusSettings(nats_url=server.url), source="t", ensure_stream=False)
    run = new_run_id()
    try:
        beat = ServiceHeartbeat(service="t", instance="i", version="1", pid=1, uptime_s=0)
        publishing = asyncio.create_task(bus.publish(bus.event(beat, run=run), retry_for_s=60))
        await wait_until(lambda: _retries(caplog) >= 2, timeout=10, interval=0.02, what="two publish retries")
        assert not publishing.done()
        await bus.ensure_stream()
        assert await asyncio.wait_for(publishing, 10) == 1  # stored once, at the first sequence
    finally:
        await bus.close()
        server.stop()


async def test_a_publish_that_outlasts_its_deadline_fails_as_its_last_attempt_did(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="events.bus")
    server = start_nats(tmp_path / "nats", port=free_port())
    bus = await Bus.connect(BusSettings(nats_url=server.url), source="t", ensure_stream=False)
    try:
        beat = ServiceHeartbeat(service="t", instance="i", version="1", pid=1, uptime_s=0)
        with pytest.raises(NoStreamResponseError):  # no stream: no leader to store it, whatever the wait
            await bus.publish(bus.event(beat, run=new_run_id()), retry_for_s=0.3)
        assert _retries(caplog) >= 1
        caplog.clear()
        with pytest.raises(NoStreamResponseError):
            await bus.publish(bus.event(beat, run=new_run_id()), retry_for_s=0)  # no time to wait: one attempt
        assert _retries(caplog) == 0
    finally:
        await bus.close()
        server.stop()


def _set(event: asyncio.Event):  # type: ignore[no-untyped-def]
    async def cb() -> None:
        event.set()

    return cb

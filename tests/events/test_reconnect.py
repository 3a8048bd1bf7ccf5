"""The bus survives a NATS restart: publishing works again once the server is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from events import ServiceHeartbeat, new_run_id
from events.bus import Bus
from events.settings import BusSettings
from events.subjects import run_events
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


def _set(event: asyncio.Event):  # type: ignore[no-untyped-def]
    async def cb() -> None:
        event.set()

    return cb

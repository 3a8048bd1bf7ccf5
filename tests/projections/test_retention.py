"""Whether the log still holds a run from its beginning (``projections.retention``), against a
nats-server of this module's own: its stream is purged and given small limits, which the session's
shared stream must never be."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from events import RunStarted, ServiceHeartbeat, new_run_id
from events.bus import Bus
from events.envelope import Payload
from events.settings import STREAM_NAME, BusSettings
from oplab.infra import RunningServer, start_nats
from projections.retention import StreamWindow, judge_completeness, run_completeness, run_gap


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_nats(tmp_path / "nats")
    yield running
    running.stop()


@pytest.fixture
async def bus(server: RunningServer) -> AsyncIterator[Bus]:
    connected = await Bus.connect(BusSettings(nats_url=server.url), source="tests")
    yield connected
    await connected.close()


def beat(n: int) -> ServiceHeartbeat:
    return ServiceHeartbeat(service="monitor", instance="m1", version="t", pid=n, uptime_s=float(n))


def started() -> RunStarted:
    return RunStarted(scenario="ratelimiter", subject="ratelimiter", fault="node_kill")


async def record(bus: Bus, run: str, payloads: list[Payload]) -> list[int]:
    return [await bus.publish(bus.event(p, run=run)) for p in payloads]


async def test_a_run_the_log_holds_from_its_start_is_complete(bus: Bus) -> None:
    run = new_run_id()
    await record(bus, run, [started(), beat(1), beat(2)])
    found = await run_completeness(bus, run)
    assert found.complete and found.notice is None


async def test_a_run_whose_start_was_purged_says_where_the_log_now_starts(bus: Bus) -> None:
    early, later = new_run_id(), new_run_id()
    seqs = await record(bus, early, [started(), beat(1), beat(2), beat(3)])
    await record(bus, later, [started(), beat(4)])
    await bus.js.purge_stream(STREAM_NAME, seq=seqs[2])  # the first two of the early run are gone

    found = await run_completeness(bus, early)
    assert not found.complete
    assert (found.first_seq, found.first_type, found.stream.first_seq) == (seqs[2], "svc.heartbeat", seqs[2])
    assert found.notice is not None
    assert f"run {early} is incomplete: its beginning (run.started) aged out of the log" in found.notice
    assert f"now starts at seq {seqs[2]}" in found.notice and f"first stored event is seq {seqs[2]}" in found.notice
    assert (await run_completeness(bus, later)).complete
    assert await run_gap(bus.settings.nats_url, early) == found.notice


async def test_a_stream_at_its_message_limit_drops_a_runs_beginning_and_says_so(bus: Bus) -> None:
    info = await bus.js.stream_info(STREAM_NAME)
    config = info.config
    config.max_msgs = 4
    await bus.js.update_stream(config)
    run = new_run_id()
    await record(bus, run, [started(), *(beat(n) for n in range(6))])

    found = await run_completeness(bus, run)
    assert not found.complete and found.stream.first_seq == 4 and found.first_seq == 4
    assert found.notice is not None and "max messages 4" in found.notice


async def test_a_run_that_has_aged_out_entirely_says_so(bus: Bus) -> None:
    gone, kept = new_run_id(), new_run_id()
    await record(bus, gone, [started(), beat(1)])
    seqs = await record(bus, kept, [started()])
    await bus.js.purge_stream(STREAM_NAME, seq=seqs[0])
    found = await run_completeness(bus, gone)
    assert not found.complete and found.first_seq is None
    assert found.notice is not None and "aged out of the log entirely" in found.notice


def test_a_run_without_a_start_is_whole_while_the_stream_has_lost_nothing() -> None:
    window = StreamWindow(first_seq=1, last_seq=10)
    assert judge_completeness("r1", window, has_start=False, first=None).complete
    lost = StreamWindow(first_seq=5, last_seq=10, max_age_s=7 * 86400.0, max_bytes=2 * 1024**3)
    judged = judge_completeness("r1", lost, has_start=False, first=None)
    assert not judged.complete and lost.limits() == "max age 7d, max bytes 2.0 GiB"


"""The reader process against a real nats-server: stored messages, undecoded, in bounded batches."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from events import ServiceHeartbeat, TicketOpened, new_ticket_id
from events.bus import Bus
from events.codec import decode
from events.envelope import utcnow
from events.raw_reader import RawReaderError, read_stored
from events.raw_reader_wire import StoredMessage
from events.settings import BusSettings
from events.subjects import run_events
from oplab.infra import RunningServer, free_port, start_nats
from oplab.nats_auth import ADMIN, LabCredentials


async def stored(bus: Bus, run: str, from_seq: int = 1) -> list[StoredMessage]:
    """The run's messages as the bus replays them in this process."""
    got: list[StoredMessage] = []

    async def keep(seq: int, subject: str, data: bytes) -> None:
        got.append((seq, subject, data))

    await bus.replay_stored(run_events(run), keep, from_seq=from_seq)
    return got


async def publish_mixed(bus: Bus, run: str, beats: int) -> None:
    """Heartbeats, a ticket, and two garbage messages (not JSON, an unknown type)."""
    await bus.publish(bus.event(TicketOpened(ticket_id=new_ticket_id(), invariant="node_down", entity="node-1",
                                             subject="ratelimiter", summary="down", first_seen=utcnow()), run=run))
    await bus.js.publish(f"lab.{run}.svc.heartbeat", b"\x00not json")
    await bus.js.publish(f"lab.{run}.svc.heartbeat", b'{"type": "no.such", "data": {}}')
    await bus.publish_batch([bus.event(ServiceHeartbeat(service="monitor", instance="m1", version="t", pid=n,
                                                        uptime_s=float(n)), run=run) for n in range(beats)])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_reader_process_delivers_every_stored_message_once_in_order_exactly_as_stored(
        bus: Bus, bus_settings: BusSettings, run_id: str) -> None:
    await publish_mixed(bus, run_id, beats=300)
    expected = await stored(bus, run_id)

    got: list[StoredMessage] = []
    async with read_stored(bus_settings, run_events(run_id), batch_bytes=4096) as reader:
        async for batch in reader.batches():
            got += batch
    assert got == expected
    assert len(got) == 303
    assert reader.ended
    assert (reader.stats.messages, reader.stats.last_seq) == (303, expected[-1][0])
    assert reader.stats.child["delivered"] == 303


async def test_a_reader_starts_at_the_sequence_asked_for(bus: Bus, bus_settings: BusSettings, run_id: str) -> None:
    await publish_mixed(bus, run_id, beats=20)
    everything = await stored(bus, run_id)
    start = everything[10][0]

    async with read_stored(bus_settings, run_events(run_id), from_seq=start) as reader:
        got = [m async for batch in reader.batches() for m in batch]
    assert got == everything[10:]


async def test_a_reader_with_nothing_to_read_ends_at_once(bus: Bus, bus_settings: BusSettings, run_id: str) -> None:
    await publish_mixed(bus, run_id, beats=1)
    beyond = await bus.last_seq() + 1

    async with read_stored(bus_settings, run_events(run_id), from_seq=beyond) as reader:
        batches = [batch async for batch in reader.batches()]
    assert batches == []
    assert reader.ended


async def test_each_batch_stays_within_its_byte_bound(bus: Bus, bus_settings: BusSettings, run_id: str) -> None:
    await publish_mixed(bus, run_id, beats=400)
    largest = max(len(data) + len(subject) + 14 for _, subject, data in await stored(bus, run_id))

    sizes: list[int] = []
    async with read_stored(bus_settings, run_events(run_id), batch_bytes=2048) as reader:
        async for batch in reader.batches():
            sizes.append(sum(len(data) + len(subject) + 14 for _, subject, data in batch))
    assert len(sizes) > 10
    assert max(sizes) < 2048 + largest  # a batch is sent as soon as it reaches the bound
    assert reader.stats.high_water_bytes == max(sizes)


async def test_a_reader_ahead_of_its_caller_pauses_within_its_backlog_bound_and_loses_nothing(
        bus: Bus, bus_settings: BusSettings, run_id: str) -> None:
    await publish_mixed(bus, run_id, beats=6000)
    expected = await stored(bus, run_id)

    got: list[StoredMessage] = []
    # a small pipe and backlog, and a caller that works hard on each message (it decodes it a few
    # times over): the child gets ahead, stops its consumer, and resumes after the last message
    # it handed over
    async with read_stored(bus_settings, run_events(run_id), batch_bytes=4096, backlog_bytes=16384,
                           pipe_bytes=4096) as reader:
        async for batch in reader.batches():
            for message in batch:
                for _ in range(5):
                    decode(message[2])
            got += batch
    assert got == expected
    assert reader.stats.child["pauses"] >= 1
    assert reader.stats.child["peak_backlog_bytes"] <= 16384 + 2 * 4096 + 1024


async def test_the_reader_process_is_gone_after_its_block_even_when_the_caller_stops_early(
        bus: Bus, bus_settings: BusSettings, run_id: str) -> None:
    await publish_mixed(bus, run_id, beats=2000)

    async with read_stored(bus_settings, run_events(run_id), batch_bytes=1024) as reader:
        async for _batch in reader.batches():
            break  # the caller loses interest; the child is mid-history, blocked on the pipe
        pid = reader.pid
        assert alive(pid)
    assert not alive(pid)
    assert not reader.ended


async def test_a_nats_that_does_not_answer_is_an_error_that_says_where() -> None:
    settings = BusSettings(nats_url="nats://127.0.0.1:1")
    with pytest.raises(RawReaderError, match=r"nats://127\.0\.0\.1:1"):
        async with read_stored(settings, "lab.>", connect_timeout_s=1.0) as reader:
            async for _batch in reader.batches():
                pass


# -- a lab whose NATS has a user per role ------------------------------------


@pytest.fixture(scope="module")
def secured_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, LabCredentials]]:
    home = tmp_path_factory.mktemp("secured-lab")
    credentials = LabCredentials.create(home)
    port = free_port()
    server = start_nats(home / "nats", port=port,
                        config=credentials.write_server_config(home / "nats.conf", port, home / "nats" / "js"))
    yield server, credentials
    server.stop()


async def test_a_reader_connects_with_its_callers_credentials(
        secured_lab: tuple[RunningServer, LabCredentials], run_id: str) -> None:
    server, credentials = secured_lab
    admin = await Bus.connect(BusSettings(nats_url=credentials.url(server.url, ADMIN)), source="admin/t")
    try:
        await publish_mixed(admin, run_id, beats=50)
        expected = await stored(admin, run_id)
    finally:
        await admin.close()

    as_projector = BusSettings(nats_url=server.url, nats_user="projector",
                               nats_password=credentials.passwords["projector"])
    async with read_stored(as_projector, run_events(run_id)) as reader:
        got = [m async for batch in reader.batches() for m in batch]
    assert got == expected


async def test_a_reader_refused_by_nats_says_so(secured_lab: tuple[RunningServer, LabCredentials]) -> None:
    server, _ = secured_lab
    wrong = BusSettings(nats_url=server.url, nats_user="projector", nats_password="not-the-password")
    with pytest.raises(RawReaderError, match="refused"):
        async with read_stored(wrong, "lab.>", connect_timeout_s=5.0) as reader:
            async for _batch in reader.batches():
                pass

"""`oplab up` on its own NATS: every service connects as its own user, and what reaches the lab's
NATS without the right user cannot speak (the server refuses; nothing forged is stored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from events import TicketResolved, new_event
from events.bus import STREAM_NAME, Bus
from events.codec import encode
from events.settings import BusSettings
from events.subjects import event_subject
from oplab.nats_auth import ADMIN, LabCredentials
from oplab.settings import LabSettings
from oplab.stack import Stack, StackInfo
from oplab.supervisor import SERVICES
from tests.servers import EmbeddedValkey

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_nats_stack(tmp_path: Path, valkey_server: EmbeddedValkey,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, StackInfo]]:
    monkeypatch.setenv("REDIS_URL", valkey_server.url)
    monkeypatch.delenv("NATS_URL", raising=False)
    stack = Stack(LabSettings(home=tmp_path / "oplab"))
    info = stack.up(fault="node_kill", mode="interactive")  # the director waits: nothing injected
    try:
        yield stack, info
    finally:
        stack.down()


async def test_services_run_as_their_users_and_strangers_cannot_speak(own_nats_stack) -> None:  # type: ignore[no-untyped-def]
    stack, info = own_nats_stack
    assert info.embedded_nats and "@" not in info.nats_url  # the saved URL carries no secret
    credentials = LabCredentials.load(stack.home)
    assert credentials is not None
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(info.nats_url, allow_reconnect=False, connect_timeout=3)

    admin = await Bus.connect(BusSettings(nats_url=stack.nats_url(info, ADMIN)), source="test/admin")
    viewer = await Bus.connect(BusSettings(nats_url=stack.nats_url(info, "viewer")), source="test/viewer",
                               ensure_stream=False)
    try:
        started: set[str] = set()

        async def keep(d) -> None:  # type: ignore[no-untyped-def]
            if d.event.type == "svc.started":
                started.add(d.event.data.service)

        await admin.replay(f"lab.{info.run}.svc.started", keep)
        assert started == set(SERVICES)  # each connected as its own user and recorded its start

        forged = new_event(TicketResolved(ticket_id="tk-0000000001", by="agent"), run=info.run, source="viewer")
        with pytest.raises(NatsError):
            await viewer.nc.jetstream(timeout=1).publish(event_subject(forged), encode(forged), stream=STREAM_NAME)
        assert await admin.read_subject(event_subject(forged)) == []  # never stored
    finally:
        await viewer.close()
        await admin.close()

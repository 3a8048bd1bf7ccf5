"""The projector as a real process: ``python -m services.projector`` against the test nats-server.

It projects the whole stream (every run) into ``$OPLAB_HOME/ticketlog.sqlite``; this
test scripts its own run's tickets and reads that file, waiting on conditions
with deadlines.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from events import TicketEscalated, new_ticket_id
from events.bus import Bus
from events.envelope import Payload
from events.subjects import ALL_EVENTS
from events.waiting import WaitTimeout, wait_until
from oplab.infra import RunningServer
from projections.ticket_log import SQLiteTicketLogView, TicketLogSettings, TicketLogView, catch_up, open_ticket_log
from tests.projections.ticket_scripts import claimed, feeder_of, opened, project, remedied
from tickets.state import TicketStatus

REPO = Path(__file__).resolve().parents[2]


class Projector:
    """One ``python -m services.projector`` child process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.projector"], cwd=REPO,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"projector exited {self.proc.returncode}:\n{self.log_path.read_text()}")


@pytest.fixture
def projector(nats_server: RunningServer, run_id: str, tmp_path: Path) -> Iterator[Projector]:
    env = dict(os.environ)
    env.update(NATS_URL=nats_server.url, OPLAB_RUN=run_id, OPLAB_HOME=str(tmp_path / "oplab"),
               OPLAB_HEARTBEAT_S="60")
    env.pop("OPLAB_TICKETLOG_URL", None)
    p = Projector(env, tmp_path / "projector.log")
    yield p
    p.kill()


async def poll_until(condition: Callable[[], bool], timeout: float = 20.0,
                     alive: Callable[[], None] = lambda: None) -> bool:
    """Poll ``condition()`` (a read of the view, which has no change notification) until it
    holds or ``timeout`` passes (every 0.02 s); ``alive`` may raise to fail fast. Returns whether it held."""

    def held() -> bool:
        if condition():
            return True
        alive()
        return False

    try:
        return await wait_until(held, timeout=timeout, interval=0.02, what="the view")
    except WaitTimeout:
        return False


async def eventually(condition: Callable[[], bool], projector: Projector, timeout: float = 20.0) -> None:
    """Wait until ``condition()`` holds, failing fast if the projector died."""
    if not await poll_until(condition, timeout, projector.check_alive):
        raise AssertionError(f"condition not met in {timeout}s:\n{projector.log_path.read_text()}")


def status(view: TicketLogView, tid: str) -> TicketStatus | None:
    state = view.get_ticket(tid)
    return state.status if state else None


async def test_the_projector_projects_resumes_after_sigterm_and_exits_0(
    bus: Bus, run_id: str, projector: Projector, tmp_path: Path
) -> None:
    a, b, c = new_ticket_id(), new_ticket_id(), new_ticket_id()

    async def publish(*payloads: Payload) -> int:
        return (await bus.publish_batch([bus.event(p, run=run_id) for p in payloads]))[-1]

    before_start = await publish(opened(a), claimed(a), opened(b))  # history to catch up on
    projector.start()
    view = open_ticket_log(TicketLogSettings(home=tmp_path / "oplab"))
    try:
        await eventually(lambda: view.tracked() >= before_start, projector)
        assert status(view, a) == TicketStatus.CLAIMED
        assert status(view, b) == TicketStatus.OPEN

        live = await publish(*remedied(a))  # followed live
        await eventually(lambda: view.tracked() >= live, projector)
        assert status(view, a) == TicketStatus.RESOLVED

        assert projector.terminate() == 0

        while_down = await publish(claimed(b), TicketEscalated(ticket_id=b, reason="lease lost"), opened(c))
        assert view.tracked() < while_down
        projector.start()
        await eventually(lambda: view.tracked() >= while_down, projector)
        after_restart = await publish(claimed(c))
        await eventually(lambda: view.tracked() >= after_restart, projector)

        rows = {t.ticket_id: t for t in view.list_tickets(run=run_id)}
        assert {tid: (t.status, t.events) for tid, t in rows.items()} == {  # events: nothing folded twice
            a: (TicketStatus.RESOLVED, 7),
            b: (TicketStatus.ESCALATED, 3),
            c: (TicketStatus.CLAIMED, 2),
        }
        assert projector.terminate() == 0

        rebuilt = SQLiteTicketLogView.open(tmp_path / "rebuilt.sqlite")
        try:
            await catch_up(bus, feeder_of(rebuilt), filter_subject=ALL_EVENTS)
            mine = [r for r in rebuilt.dump_rows() if r["run"] == run_id]
            assert mine == [r for r in view.dump_rows() if r["run"] == run_id]
        finally:
            rebuilt.close()
    finally:
        view.close()
    log = projector.log_path.read_text()
    assert log.count("caught up") == 2 and "Traceback" not in log


async def test_a_projector_killed_mid_stream_resumes_without_duplicates(
    bus: Bus, run_id: str, projector: Projector, tmp_path: Path
) -> None:
    tickets = [new_ticket_id() for _ in range(200)]
    script: list[Payload] = [opened(t) for t in tickets] + [claimed(t) for t in tickets]
    for step in range(5):
        script += [remedied(t)[step] for t in tickets]
    last = (await bus.publish_batch([bus.event(p, run=run_id) for p in script]))[-1]
    projector.env.update(OPLAB_TICKETLOG_BATCH_SIZE="1", OPLAB_TICKETLOG_MAX_BATCH="1")  # many commits
    projector.start()
    view = open_ticket_log(TicketLogSettings(home=tmp_path / "oplab"))
    try:
        await eventually(lambda: view.tracked() > 0, projector)
        assert projector.proc is not None
        projector.proc.kill()  # SIGKILL: no flush, maybe mid-transaction
        projector.proc.wait(5)
        killed_at = view.tracked()
        assert 0 < killed_at < last  # one commit per event: it died mid-stream
        del projector.env["OPLAB_TICKETLOG_MAX_BATCH"], projector.env["OPLAB_TICKETLOG_BATCH_SIZE"]
        projector.start()
        await eventually(lambda: view.tracked() >= last, projector)
        rows = view.list_tickets(run=run_id, limit=None)
        assert len(rows) == len(tickets)
        assert {(t.status, t.events) for t in rows} == {(TicketStatus.RESOLVED, 7)}
        assert projector.terminate() == 0
    finally:
        view.close()


async def test_a_view_ahead_of_the_stream_is_rebuilt(
    bus: Bus, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view tracking beyond the stream's end was built from another stream: it is cleared."""
    from events.replay import Delivered
    from services.projector.bootstrap import build as build_projector
    from services.runtime import ServiceSettings

    monkeypatch.delenv("OPLAB_TICKETLOG_URL", raising=False)
    home = tmp_path / "oplab"
    stale, real = new_ticket_id(), new_ticket_id()
    seq = await bus.publish(bus.event(opened(real), run=run_id))
    view = open_ticket_log(TicketLogSettings(home=home))
    try:
        project(view, [Delivered(bus.event(opened(stale), run=run_id), 10**12, "lab.x.ticket.y")])
        service = build_projector(bus, ServiceSettings(run=run_id, home=home))
        main = asyncio.create_task(service.main())

        assert await poll_until(lambda: seq <= view.tracked() < 10**12)
        await service.stop()
        await asyncio.wait_for(main, 10)
        assert view.get_ticket(stale) is None
        assert view.get_ticket(real) is not None
    finally:
        view.close()

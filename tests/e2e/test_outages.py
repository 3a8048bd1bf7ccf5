"""Outages mid-run on `make demo`'s path (embedded NATS and valkey under supervisord): the lab's
NATS stopped and started again on its store, one server of a three-server NATS cluster lost,
Redis restarted. Services reconnect, the run completes, nothing stored before the outage is lost
and nothing is stored twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from events import Event
from events.bus import STREAM_NAME, Bus
from events.settings import BusSettings
from events.waiting import wait_until
from oplab.crashes import brisk_scenario
from oplab.history import run_history
from oplab.nats_auth import ADMIN
from oplab.settings import LabSettings
from oplab.stack import Stack, StackInfo
from oplab.supervisor import Supervisor

pytestmark = pytest.mark.e2e

OUTAGE_S = 2.0  # how long the server stays away: the outage itself, not a synchronisation


def _embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nats_cluster: int) -> Stack:
    for name in ("NATS_URL", "OPLAB_NATS_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return Stack(LabSettings(home=tmp_path / "oplab", nats_cluster=nats_cluster,
                             scenario=str(brisk_scenario("ratelimiter", tmp_path, countdown_s=1.0))))


@contextmanager
def _running(stack: Stack) -> Iterator[tuple[Stack, StackInfo]]:
    info = stack.up(fault="node_kill", mode="auto")
    try:
        yield stack, info
    finally:
        stack.down()


@pytest.fixture
def embedded_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, StackInfo]]:
    with _running(_embedded(tmp_path, monkeypatch, nats_cluster=1)) as running:
        yield running


async def history(stack: Stack, info: StackInfo) -> list[tuple[int, Event]]:
    return await run_history(stack.nats_url(info, ADMIN), info.run)


async def wait_in_log(stack: Stack, info: StackInfo, predicate: Callable[[Event], bool], timeout: float,
                      what: str) -> list[tuple[int, Event]]:
    """The run's history once an event matches."""
    return await wait_until_log(stack, info, lambda events: any(predicate(e) for _, e in events), timeout, what)


def _every_ticket_ended(events: list[tuple[int, Event]]) -> bool:
    opened = {e.data.ticket_id for _, e in events if e.type == "ticket.opened"}
    ended = {e.data.ticket_id for _, e in events if e.type in ("ticket.resolved", "ticket.escalated")}
    return opened <= ended


async def wait_until_log(stack: Stack, info: StackInfo, holds: Callable[[list[tuple[int, Event]]], bool],
                         timeout: float, what: str) -> list[tuple[int, Event]]:
    """The run's history once ``holds`` is true of it as a whole (read afresh each time, under a
    deadline: it survives a server restart; polled every 0.25 s)."""

    async def holding() -> list[tuple[int, Event]] | None:
        try:
            events = await asyncio.wait_for(history(stack, info), 10)
        except (OSError, TimeoutError, ConnectionError):
            return None  # the server is away: try again
        return events if holds(events) else None

    return await wait_until(holding, timeout=timeout, interval=0.25, what=what)


def judge_complete(events: list[tuple[int, Event]]) -> dict[str, object]:
    ids = [e.id for _, e in events]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    finished = [e for _, e in events if e.type == "run.finished"]
    assert len(finished) == 1
    opened = {e.data.ticket_id for _, e in events if e.type == "ticket.opened"}
    ended = {e.data.ticket_id for _, e in events if e.type in ("ticket.resolved", "ticket.escalated")}
    assert opened and opened <= ended, f"tickets left open: {opened - ended}"
    return dict(finished[0].data.summary)


async def test_the_labs_nats_stopped_and_started_again_mid_run(embedded_stack) -> None:  # type: ignore[no-untyped-def]
    stack, info = embedded_stack
    before = await wait_in_log(stack, info, lambda e: e.type == "chaos.fault_injected", 60, "the injection")
    sup = Supervisor(info.supervisor_url)
    await asyncio.to_thread(sup.stop, "nats")  # every service loses its server at once
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(sup.start, "nats")
    after = await wait_in_log(stack, info, lambda e: e.type == "run.finished", 120, "the run to finish")
    stored = {e.id for _, e in after}
    assert all(e.id in stored for _, e in before), "an event stored before the outage was lost"
    summary = judge_complete(after)
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent", summary
    restarted = [e for _, e in after if e.type == "svc.started" and e.time > before[-1][1].time]
    assert not restarted, f"services restarted instead of reconnecting: {[e.data.service for e in restarted]}"


async def test_redis_restarted_mid_run(embedded_stack) -> None:  # type: ignore[no-untyped-def]
    stack, info = embedded_stack
    await wait_in_log(stack, info, lambda e: e.type == "chaos.fault_injected", 60, "the injection")
    sup = Supervisor(info.supervisor_url)
    await asyncio.to_thread(sup.stop, "valkey")
    await asyncio.sleep(OUTAGE_S)
    await asyncio.to_thread(sup.start, "valkey")
    await wait_in_log(stack, info, lambda e: e.type == "run.finished", 120, "the run to finish")
    # the outage may be the run's first ticket (the monitor sees Redis go before the killed node) and
    # end the story while the node's own ticket is still worked: nothing may stay stuck, so wait for it
    after = await wait_until_log(stack, info, _every_ticket_ended, 60, "every ticket to be resolved or escalated")
    summary = judge_complete(after)
    assert summary["outcome"] in ("resolved", "escalated"), summary  # finished, and says how


@pytest.fixture
def cluster_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, StackInfo]]:
    with _running(_embedded(tmp_path, monkeypatch, nats_cluster=3)) as running:
        yield running


async def test_losing_one_server_of_a_nats_cluster_mid_run_loses_nothing(cluster_stack) -> None:  # type: ignore[no-untyped-def]
    stack, info = cluster_stack
    assert len(info.nats_url.split(",")) == 3
    before = await wait_in_log(stack, info, lambda e: e.type == "chaos.fault_injected", 60, "the injection")
    bus = await Bus.connect(BusSettings(nats_url=stack.nats_url(info, ADMIN)), source="test", ensure_stream=False)
    try:
        assert (await bus.js.stream_info(STREAM_NAME)).config.num_replicas == 3
    finally:
        await bus.close()
    sup = Supervisor(info.supervisor_url)
    killed = sup.process("nats-2")["pid"]
    await asyncio.to_thread(sup.signal, "nats-2", "KILL")  # gone, no goodbye ...

    def noticed() -> bool:  # supervisord reports the death on its next tick: polled
        state = sup.process("nats-2")
        return state["statename"] != "RUNNING" or state["pid"] != killed

    await wait_until(noticed, timeout=10, interval=0.05, what="supervisord to notice the kill")
    await asyncio.to_thread(sup.stop, "nats-2")  # ... and kept down: the run goes on with two of three
    after = await wait_in_log(stack, info, lambda e: e.type == "run.finished", 120, "the run to finish")
    assert sup.process("nats-2")["statename"] in ("STOPPED", "EXITED")
    stored = {e.id for _, e in after}
    assert all(e.id in stored for _, e in before), "an event stored before the loss was lost"
    summary = judge_complete(after)
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent", summary

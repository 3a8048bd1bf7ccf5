"""The chaos service in-process on the real bus, against a small in-memory subject.

The subject (``Switchboard``) is a real implementation of the fault kit
role whose faults can be told to fail, so the paths a real system only
takes on a bad day - a revert that fails, a crash mid-injection, a record
that cannot be written - are exercised deterministically. Nothing of ours is
mocked: the service, the bus and NATS are the real ones.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from events import Event, FaultInjected, FaultRequested, ServiceStopping, new_event, new_fault_id
from events.bus import Bus
from events.commands import CommandError, request
from events.settings import BusSettings
from events.waiting import wait_until
from services.chaos.bootstrap import build as build_chaos
from services.chaos.service import MID_INJECTION, ChaosService
from services.runtime import ServiceSettings
from subjects.contract import SubjectError
from subjects.contract.fault_kit import Fault, FaultKit, Injection, Reverted
from tests.e2e.conftest import RunLog, follow_run
from tests.services.in_process import InProcess


class SwitchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unrecordable: bool = False  # undo data the log cannot store: the fault_injected publish fails


class Switchboard:
    """The system under test: each target holds the set of faults breaking it."""

    def __init__(self) -> None:
        self.breaks: dict[str, set[str]] = {"t1": set(), "t2": set()}
        self.revert_failures = 0  # the next N reverts fail
        self.failed_reverts: list[float] = []  # when each failed (monotonic clock)

    def broken(self, target: str) -> bool:
        return bool(self.breaks[target])


@dataclass
class Flip(Fault):
    kind = "flip"
    description = "break a target; undo from the token, or (with undo_for_target) from the target alone"
    params_model = SwitchParams
    board: Switchboard  # the system it breaks

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        target = target or "t1"
        token = secrets.token_hex(4)
        self.board.breaks[target].add(token)
        undo: dict[str, Any] = {"target": target, "token": token}
        if isinstance(params, SwitchParams) and params.unrecordable:
            undo["handle"] = object()
        return Injection(target=target, undo=undo)

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        return {"broken": injection.target} if self.board.broken(injection.target) else None

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        if self.board.revert_failures > 0:
            self.board.revert_failures -= 1
            self.board.failed_reverts.append(time.monotonic())
            raise SubjectError("switchboard unreachable")
        breaks = self.board.breaks[undo["target"]]
        was_broken = bool(breaks)
        if "token" in undo:
            breaks.discard(undo["token"])
        else:
            breaks.clear()
        return Reverted(f"{undo['target']} restored", changed=was_broken)

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return {"target": target}


class Opaque(Flip):
    kind = "opaque"
    description = "like flip, but its undo needs the injection's result"
    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return None


class SwitchboardKit(FaultKit):
    """The chaos service's role of an in-memory subject."""

    def __init__(self, board: Switchboard) -> None:
        self._faults = [Flip(board), Opaque(board)]

    def faults(self) -> list[Fault]:
        return list(self._faults)

    def targets(self) -> list[str]:
        return ["t1", "t2"]


Chaos = InProcess[ChaosService]
"""A running chaos service: its own connection, like the real process."""

Lab = tuple[Switchboard, Callable[[], Awaitable[Chaos]], RunLog]


@pytest.fixture
async def lab(bus_settings: BusSettings, bus: Bus, run_id: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Lab]:
    monkeypatch.setenv("OPLAB_CHAOS_REVERT_RETRY_FIRST_S", "0.05")
    monkeypatch.setenv("OPLAB_CHAOS_REVERT_RETRY_MAX_S", "0.2")
    board = Switchboard()
    running: list[Chaos] = []

    async def start() -> Chaos:
        chaos_bus = await Bus.connect(bus_settings, source="chaos/test")
        running.append(InProcess(build_chaos(chaos_bus, ServiceSettings(run=run_id, instance="test"),
                                             kit=SwitchboardKit(board))))
        await running[-1].ready()
        return running[-1]

    log, replay = await follow_run(bus, run_id)
    yield board, start, log
    await replay.stop()  # type: ignore[attr-defined]
    for chaos in running:
        if not chaos.task.done():
            await chaos.stop()


def of_fault(fault_id: str, type_name: str) -> Callable[[Event], bool]:
    return lambda e: e.type == type_name and e.data.fault_id == fault_id


async def test_a_failed_ttl_revert_is_retried_until_it_works(lab, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    board, start, log = lab
    chaos = await start()
    board.revert_failures = 3
    reply = await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t1", "ttl_s": 0.2})
    fault_id = reply["fault"]["fault_id"]
    reverted = await log.wait_for(of_fault(fault_id, "chaos.fault_reverted"), 10, "revert after retries")
    assert reverted.data.reason == "ttl"
    assert not board.broken("t1") and board.revert_failures == 0
    failures = [e for e in log.of_type("chaos.fault_failed") if e.data.fault_id == fault_id]
    assert [(e.data.stage, e.data.reason) for e in failures] == [("revert", "switchboard unreachable")]
    [injected] = [e for e in log.of_type("chaos.fault_injected") if e.data.fault_id == fault_id]
    assert failures[0].causation == reverted.causation == injected.id
    assert (await request(bus.nc, "chaos", "list"))["faults"] == []
    assert not chaos.service._timers and not chaos.service._confirms  # nothing left running for it
    await chaos.stop()


async def test_a_failing_revert_is_retried_after_doubling_pauses_until_the_service_stops(  # type: ignore[no-untyped-def]
        lab, bus: Bus) -> None:
    board, start, log = lab  # pauses: 0.05 s doubling, at most 0.2 s (the lab fixture's settings)
    chaos = await start()
    board.revert_failures = 10**6
    fault_id = (await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t1", "ttl_s": 0.1}))[
        "fault"]["fault_id"]
    await wait_until(lambda: len(board.failed_reverts) >= 6, timeout=20, interval=0.02, what="six failed reverts")
    gaps = [later - earlier for earlier, later in zip(board.failed_reverts, board.failed_reverts[1:], strict=False)]
    for gap, pause in zip(gaps, [0.05, 0.1, 0.2, 0.2, 0.2], strict=False):
        assert gap >= pause - 0.01, f"retried too soon: {gaps}"  # never sooner; later is the machine's load
    await chaos.stop()  # ends the retries: the fault stays, on record, for the successor
    assert board.broken("t1")
    assert [e.data.stage for e in log.of_type("chaos.fault_failed") if e.data.fault_id == fault_id] == ["revert"]
    board.revert_failures = 0
    successor = await start()  # past its TTL: reverted on adoption
    reverted = await log.wait_for(of_fault(fault_id, "chaos.fault_reverted"), 10, "revert by the successor")
    assert reverted.data.reason == "ttl" and not board.broken("t1")
    await successor.stop()


async def test_requests_cut_off_mid_injection_are_settled_at_start(lab, bus: Bus, run_id: str) -> None:  # type: ignore[no-untyped-def]
    board, start, log = lab
    # a crashed predecessor recorded these requests and broke the targets, then died before fault_injected
    flip_id, opaque_id = new_fault_id(), new_fault_id()
    requested: dict[str, str] = {}
    for fault_id, kind, target in ((flip_id, "flip", "t1"), (opaque_id, "opaque", "t2")):
        event = new_event(FaultRequested(fault_id=fault_id, kind=kind, target=target, ttl_s=60),
                          run=run_id, source="chaos/crashed", correlation=fault_id)
        await bus.publish(event)
        requested[fault_id] = event.id
        board.breaks[target].add("lost-token")
    chaos = await start()
    flip = await log.wait_for(of_fault(flip_id, "chaos.fault_failed"), 10, "flip settled")
    opaque = await log.wait_for(of_fault(opaque_id, "chaos.fault_failed"), 10, "opaque settled")
    assert flip.data.stage == opaque.data.stage == "inject"
    assert flip.data.reason == f"{MID_INJECTION}; reverted from its target: t1 restored"
    assert opaque.data.reason == MID_INJECTION
    assert (flip.causation, opaque.causation) == (requested[flip_id], requested[opaque_id])
    assert not board.broken("t1")  # its undo could be derived from the target
    assert board.broken("t2")  # its undo could not: recorded, left alone
    await chaos.stop()
    # a second start finds nothing left to settle
    again = await start()
    await again.stop()
    marker = await bus.publish(new_event(ServiceStopping(service="marker", instance="tests"), run=run_id,
                                         source="tests"))
    await log.wait_for(lambda e: e.type == "svc.stopping" and e.data.service == "marker", 10, "marker")
    assert marker and len(log.of_type("chaos.fault_failed")) == 2


async def test_an_injection_that_cannot_stand_is_undone_and_recorded(lab, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    board, start, log = lab
    chaos = await start()
    first = (await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t1", "ttl_s": 60}))["fault"]
    # no target given: the fault picks t1, which is busy - refused after the fact, and undone
    with pytest.raises(CommandError) as busy:
        await request(bus.nc, "chaos", "inject", {"kind": "flip", "ttl_s": 60})
    assert busy.value.code == "400" and "abandoned" in busy.value.description
    # the fault_injected record cannot be written: undone at once
    with pytest.raises(CommandError) as unrecorded:
        await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t2", "params": {"unrecordable": True}})
    assert unrecorded.value.code == "500" and "undone" in unrecorded.value.description
    assert board.breaks["t1"] and len(board.breaks["t1"]) == 1 and not board.broken("t2")

    requested = [e.data.fault_id for e in log.of_type("chaos.fault_requested")]
    assert len(requested) == 3
    for fault_id in requested[1:]:
        failed = await log.wait_for(of_fault(fault_id, "chaos.fault_failed"), 10, "abandoned injection recorded")
        assert failed.data.stage == "inject" and "undone (" in failed.data.reason
    assert [e.data.fault_id for e in log.of_type("chaos.fault_injected")] == [first["fault_id"]]
    # the publish that failed may have stored its fault_injected (a lost acknowledgement): the undo is on record
    undone = await log.wait_for(of_fault(requested[2], "chaos.fault_reverted"), 10, "the undo recorded")
    assert (undone.data.reason, undone.data.changed) == ("abandoned", True)
    await chaos.stop()  # the one fault on record is handed over, not reverted
    assert board.broken("t1") and not log.of_type("chaos.fault_reverted")[1:]
    successor = await start()
    await log.wait_for(of_fault(first["fault_id"], "chaos.fault_adopted"), 10, "the fault adopted")
    await successor.stop()


async def test_a_stopped_chaos_service_hands_its_faults_to_the_next(lab, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    board, start, log = lab
    chaos = await start()
    fault = (await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t1", "ttl_s": 2.0}))["fault"]
    injected = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_injected"), 10, "injected")
    await chaos.stop()  # SIGTERM: a restart, not the lab going down
    assert board.broken("t1") and not log.of_type("chaos.fault_reverted")

    successor = await start()
    adopted = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_adopted"), 10, "adopted")
    assert adopted.data.expires_at == injected.data.expires_at  # the TTL it was injected with
    assert [f["fault_id"] for f in (await request(bus.nc, "chaos", "list"))["faults"]] == [fault["fault_id"]]
    reverted = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_reverted"), 10, "ttl revert")
    assert reverted.data.reason == "ttl" and reverted.data.changed is True
    assert reverted.time >= injected.data.expires_at and not board.broken("t1")
    assert [e.data.fault_id for e in log.of_type("chaos.fault_reverted")] == [fault["fault_id"]]  # once
    await successor.stop()


async def test_a_successor_reverts_what_is_past_its_ttl_and_confirms_what_was_unconfirmed(  # type: ignore[no-untyped-def]
        lab, bus: Bus, run_id: str) -> None:
    board, start, log = lab
    # a crashed predecessor injected two faults and recorded neither as effective
    expired, live = new_fault_id(), new_fault_id()
    now = datetime.now(UTC)
    for fault_id, target, expires_at in ((expired, "t1", now - timedelta(seconds=5)),
                                         (live, "t2", now + timedelta(seconds=60))):
        board.breaks[target].add(fault_id)
        await bus.publish(new_event(FaultInjected(fault_id=fault_id, kind="flip", target=target,
                                                  undo={"target": target, "token": fault_id}, expires_at=expires_at),
                                    run=run_id, source="chaos/crashed", correlation=fault_id))
    chaos = await start()
    reverted = await log.wait_for(of_fault(expired, "chaos.fault_reverted"), 10, "expired fault reverted")
    assert reverted.data.reason == "ttl" and not board.broken("t1")
    await log.wait_for(of_fault(live, "chaos.fault_adopted"), 10, "live fault adopted")
    await log.wait_for(of_fault(live, "chaos.fault_effective"), 10, "live fault confirmed")
    assert board.broken("t2") and not [e for e in log.of_type("chaos.fault_adopted") if e.data.fault_id == expired]
    await request(bus.nc, "chaos", "revert", {"all": True, "reason": "shutdown"})
    shutdown = await log.wait_for(of_fault(live, "chaos.fault_reverted"), 10, "the lab going down")
    assert shutdown.data.reason == "shutdown" and not board.broken("t2")
    await chaos.stop()


async def test_a_revert_that_finds_nothing_to_undo_says_so(lab, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    board, start, log = lab
    chaos = await start()
    fault = (await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t1", "ttl_s": 60}))["fault"]
    board.breaks["t1"].clear()  # an operator repaired it
    await request(bus.nc, "chaos", "revert", {"fault_id": fault["fault_id"]})
    reverted = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_reverted"), 10, "revert")
    assert reverted.data.reason == "explicit" and reverted.data.changed is False
    await chaos.stop()


async def test_a_repeated_request_is_answered_with_its_fault_not_a_second_one(lab, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    board, start, log = lab
    chaos = await start()
    body = {"kind": "flip", "ttl_s": 60, "request_id": "director:demo:2:0"}
    first = await request(bus.nc, "chaos", "inject", body)
    again = await request(bus.nc, "chaos", "inject", body)
    assert again["repeated"] is True and again["fault"]["fault_id"] == first["fault"]["fault_id"]
    assert len(board.breaks["t1"]) == 1 and not board.broken("t2")  # no second fault on another target
    await chaos.stop()
    successor = await start()  # the request is remembered from the log
    await request(bus.nc, "chaos", "revert", {"all": True})
    later = await request(bus.nc, "chaos", "inject", body)
    assert later["repeated"] is True and later["fault"]["active"] is False and not board.broken("t1")
    assert len(log.of_type("chaos.fault_requested")) == 1
    await successor.stop()


async def test_each_event_of_a_fault_is_caused_by_its_injection_also_once_adopted(lab, bus: Bus) -> None:  # type: ignore[no-untyped-def]
    _, start, log = lab
    chaos = await start()
    asked_by = new_event(ServiceStopping(service="asker", instance="tests"), run="r-other", source="tests")
    fault = (await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t1", "ttl_s": 2.0,
                                                      "causation": asked_by.id}))["fault"]
    requested = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_requested"), 10, "requested")
    injected = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_injected"), 10, "injected")
    effective = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_effective"), 10, "effective")
    assert requested.causation == asked_by.id  # whoever asked, as the command said
    assert injected.causation == requested.id and effective.causation == injected.id
    await chaos.stop()
    successor = await start()  # knows the injection only from the log
    adopted = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_adopted"), 10, "adopted")
    reverted = await log.wait_for(of_fault(fault["fault_id"], "chaos.fault_reverted"), 10, "ttl revert")
    assert adopted.causation == reverted.causation == injected.id
    await successor.stop()


@pytest.mark.parametrize("causation", ["lab.>", "two words", "", "x" * 65, 42])
async def test_an_injection_whose_cause_is_no_plain_event_id_is_refused(lab, bus: Bus, causation: object) -> None:  # type: ignore[no-untyped-def]
    board, start, log = lab
    chaos = await start()
    with pytest.raises(CommandError) as refused:
        await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t1", "causation": causation})
    assert refused.value.code == "400" and "causation" in refused.value.description
    assert not board.broken("t1") and not log.of_type("chaos.fault_requested")
    await chaos.stop()

"""The chaos service's Ledger: the log's fold of every fault (projections.faults), plus what only the live
service keeps - pending requests, request ids, event ids, faults the log does not carry as injected.

The last test runs the real service on the real bus to show the order in which it writes a lost
acknowledgement's events, and that its successor holds what the log's fold says is active."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from events import (
    Event,
    FaultAdopted,
    FaultEffective,
    FaultFailed,
    FaultInjected,
    FaultRequested,
    FaultReverted,
    Payload,
)
from events.bus import Bus
from events.commands import CommandError, request
from events.settings import BusSettings
from oplab.run_log import follow_run
from projections.faults import FaultFold
from services.chaos.bootstrap import build as build_chaos
from services.chaos.ledger import ActiveFault, Ledger
from services.chaos.service import ChaosService
from services.runtime import ServiceSettings
from tests.services.in_process import InProcess
from tests.services.test_chaos_recovery import Switchboard, SwitchboardKit

EXPIRES = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def requested(fault_id: str = "f-1", request_id: str | None = "entry-1") -> FaultRequested:
    return FaultRequested(fault_id=fault_id, kind="flip", target="t1", params={}, ttl_s=60, request_id=request_id)


def injected(fault_id: str = "f-1") -> FaultInjected:
    return FaultInjected(fault_id=fault_id, kind="flip", target="t1", params={}, undo={"target": "t1", "token": "ab"},
                         expires_at=EXPIRES)


def ledger_of(*log: tuple[Payload, str | None]) -> Ledger:
    ledger = Ledger()
    for data, event_id in log:
        ledger.apply(data, event_id)
    return ledger


def test_a_request_is_pending_until_its_injection_which_is_held_with_its_undo_and_event_ids() -> None:
    ledger = ledger_of((requested(), "ev-req"))
    assert list(ledger.pending) == ["f-1"] and ledger.requested_ids == {"f-1": "ev-req"}
    assert ledger.requests["entry-1"].fault_id == "f-1" and ledger.active == {}
    ledger.apply(injected(), "ev-inj")
    assert ledger.pending == {}
    assert ledger.active["f-1"] == ActiveFault("f-1", "flip", "t1", {}, {"target": "t1", "token": "ab"}, EXPIRES,
                                               injected_id="ev-inj")
    assert ledger.on_target("t1") is ledger.active["f-1"]


def test_a_fault_stays_held_through_failed_verification_and_revert_until_it_is_reverted() -> None:
    ledger = ledger_of((requested(), None), (injected(), "ev-inj"))
    held = ledger.active["f-1"]
    ledger.apply(FaultFailed(fault_id="f-1", stage="verify", reason="not effective within 5s"))
    ledger.apply(FaultFailed(fault_id="f-1", stage="revert", reason="switchboard unreachable"))
    assert ledger.active == {"f-1": held} and not held.effective
    ledger.apply(FaultEffective(fault_id="f-1"))
    assert ledger.active["f-1"] is held and held.effective  # the same object the service's tasks hold
    ledger.apply(FaultReverted(fault_id="f-1", reason="ttl"))
    assert ledger.active == {} and ledger.on_target("t1") is None


def test_a_failed_injection_after_its_injection_is_adopted_from_the_log_as_the_fold_says() -> None:
    """A lost acknowledgement as the log carries it: the next instance adopts the fault and reverts it."""
    ledger = ledger_of((requested(), "ev-req"), (injected(), "ev-inj"),
                       (FaultFailed(fault_id="f-1", stage="inject", reason="could not record the injection"), "ev-f"))
    assert list(ledger.active) == ["f-1"] and ledger.active["f-1"].injected_id == "ev-inj"
    assert ledger.pending == {}
    assert [f.fault_id for f in ledger.faults.active()] == ["f-1"]
    ledger.apply(FaultAdopted(fault_id="f-1", expires_at=EXPIRES))
    assert list(ledger.active) == ["f-1"] and ledger.faults.faults["f-1"].adopted


def test_a_failed_injection_with_no_injection_on_record_holds_nothing() -> None:
    ledger = ledger_of((requested(), None),
                       (FaultFailed(fault_id="f-1", stage="inject", reason="chaos stopped mid-injection"), None))
    assert ledger.active == {} and ledger.pending == {} and ledger.faults.faults["f-1"].status == "failed"


def test_a_fault_the_log_does_not_carry_as_injected_is_held_until_reverted() -> None:
    ledger = ledger_of((requested(), None))
    unrecorded = ActiveFault("f-1", "flip", "t1", {}, {"target": "t1"}, EXPIRES)
    ledger.track(unrecorded)
    ledger.apply(FaultFailed(fault_id="f-1", stage="inject", reason="undoing it failed, retrying"))
    ledger.apply(FaultFailed(fault_id="f-1", stage="revert", reason="switchboard unreachable"))
    assert ledger.active == {"f-1": unrecorded} and ledger.unrecorded == {"f-1"}
    ledger.apply(FaultReverted(fault_id="f-1", reason="shutdown"))
    assert ledger.active == {} and ledger.unrecorded == set()


def test_a_revert_is_final_and_an_adoption_without_an_injection_holds_nothing_to_revert() -> None:
    ledger = ledger_of((requested(), None), (injected(), None),
                       (FaultReverted(fault_id="f-1", reason="explicit"), None))
    ledger.apply(FaultEffective(fault_id="f-1"))  # a confirmation that raced the revert
    assert ledger.active == {}
    ledger.apply(FaultAdopted(fault_id="f-2", expires_at=EXPIRES))  # no undo on record for it
    assert ledger.active == {} and [f.fault_id for f in ledger.faults.active()] == ["f-2"]


def of_fault(fault_id: str, type_name: str) -> Callable[[Event], bool]:
    return lambda e: e.type == type_name and e.data.fault_id == fault_id


def folded(events: list[Event]) -> FaultFold:
    faults = FaultFold()
    for event in events:
        faults.apply(event)
    return faults


async def test_a_lost_acknowledgement_is_undone_and_recorded_as_reverted_so_no_successor_holds_it(
        bus_settings: BusSettings, bus: Bus, run_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    board = Switchboard()
    log, replay = await follow_run(bus, run_id)
    running: list[InProcess[ChaosService]] = []

    async def start(instance: str, lose_injection_ack: bool = False) -> InProcess[ChaosService]:
        chaos_bus = await Bus.connect(bus_settings, source="chaos/test")
        if lose_injection_ack:
            stored = chaos_bus.publish

            async def lossy(event: Event, **kwargs: Any) -> int:
                seq = await stored(event, **kwargs)
                if event.type == FaultInjected.TYPE:
                    raise TimeoutError("the acknowledgement was lost")  # stored, but chaos never hears it
                return seq

            monkeypatch.setattr(chaos_bus, "publish", lossy)
        running.append(InProcess(build_chaos(chaos_bus, ServiceSettings(run=run_id, instance=instance),
                                             kit=SwitchboardKit(board))))
        await running[-1].ready()
        return running[-1]

    try:
        first = await start("a", lose_injection_ack=True)
        with pytest.raises(CommandError) as lost:
            await request(bus.nc, "chaos", "inject", {"kind": "flip", "target": "t1", "ttl_s": 600})
        assert lost.value.code == "500" and "could not record the injection" in lost.value.description
        [req] = log.of_type(FaultRequested.TYPE)
        fault_id = req.data.fault_id
        failed = await log.wait_for(of_fault(fault_id, FaultFailed.TYPE), 10, "the failed injection")
        assert failed.data.stage == "inject" and "undone (" in failed.data.reason
        assert not board.broken("t1")  # undone in-process
        reverted = await log.wait_for(of_fault(fault_id, FaultReverted.TYPE), 10, "the undo recorded")
        assert (reverted.data.reason, reverted.data.changed) == ("abandoned", True)
        # the order the service wrote: requested, injected (stored, unacknowledged), failed(inject), reverted
        assert [e.type for _, e in log.events if getattr(e.data, "fault_id", None) == fault_id] == [
            FaultRequested.TYPE, FaultInjected.TYPE, FaultFailed.TYPE, FaultReverted.TYPE]
        assert folded([e for _, e in log.events]).active() == []  # the log says what the target says: undone
        await first.stop()

        second = await start("b")  # a successor finds nothing to hold
        assert (await request(bus.nc, "chaos", "list"))["faults"] == []
        assert second.service.ledger.active == {}
        assert not log.of_type(FaultAdopted.TYPE)
    finally:
        await replay.stop()  # type: ignore[attr-defined]
        for chaos in running:
            if not chaos.task.done():
                await chaos.stop()

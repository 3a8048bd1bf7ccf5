"""Crash trials (`bench/crash_campaign.py`'s reduced set): SIGKILL of each service in its critical
window, and one at a random moment, in real auto-mode runs; nothing lost, nothing left behind."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from events import (
    FaultInjected,
    FaultReverted,
    RunFinished,
    ServiceHeartbeat,
    TicketEscalated,
    TicketOpened,
    TicketReopened,
    TicketResolved,
    new_event,
    new_fault_id,
    new_ticket_id,
)
from events.envelope import utcnow
from oplab.crashes import RANDOM, WINDOWS, _judge, brisk_scenario, plan, run_trial
from oplab.infra import RunningServer
from oplab.settings import LabSettings
from tests.servers import EmbeddedValkey

RUN = "r20261202t000000-crsh"


def test_a_campaign_plays_every_window_first_then_random_kills() -> None:
    trials = plan(8, seed=7)
    assert [t.window for t in trials[:len(WINDOWS)]] == list(WINDOWS)
    assert all(t.window == RANDOM and 0 <= t.delay_s <= 6 for t in trials[len(WINDOWS):])
    assert plan(8, seed=7) == trials  # seeded: the same campaign again
    assert all(t.fault != "hot_key_burst" for t in trials if t.window in ("agent_mid_remedy",))


def test_the_judge_names_what_a_crash_broke() -> None:
    fault, ticket = new_fault_id(), new_ticket_id()

    def ev(data):  # type: ignore[no-untyped-def]
        return new_event(data, run=RUN, source="t")

    beat = ev(ServiceHeartbeat(service="monitor", instance="i", version="v", pid=1, uptime_s=1))
    events = [ev(FaultInjected(fault_id=fault, kind="node_kill", target="node-1",
                               expires_at=utcnow() + timedelta(minutes=1))),
              ev(TicketOpened(ticket_id=ticket, invariant="node_down", entity="node-1", subject="ratelimiter",
                              summary="down", first_seen=utcnow())),
              ev(FaultReverted(fault_id=fault, reason="ttl")), ev(FaultReverted(fault_id=fault, reason="explicit")),
              beat, beat]
    assert _judge(events) == ["1 event id(s) stored twice", f"fault {fault} reverted 2 times (once expected)",
                              f"ticket(s) left open: {ticket}"]
    assert _judge([]) == ["no fault was injected"]
    unresolved = ev(RunFinished(outcome="undetected", summary={}))
    lost = ev(RunFinished(outcome="undetected", summary={"ended": "the fault was reverted (ttl) before anyone "
                                                                   "detected it"}))
    assert _judge([unresolved])[-1] == "the run ended undetected"
    assert _judge([lost])[-1].startswith("the story ended early: the fault was reverted (ttl)")


def test_the_judge_folds_the_tickets_as_the_run_does_a_reopened_ticket_is_open_again() -> None:
    fault, reopened, resolved, escalated = new_fault_id(), new_ticket_id(), new_ticket_id(), new_ticket_id()

    def ev(data):  # type: ignore[no-untyped-def]
        return new_event(data, run=RUN, source="t")

    def opened(ticket_id: str):  # type: ignore[no-untyped-def]
        return ev(TicketOpened(ticket_id=ticket_id, invariant="node_down", entity="node-1", subject="ratelimiter",
                               summary="down", first_seen=utcnow()))

    story = [ev(FaultInjected(fault_id=fault, kind="node_kill", target="node-1",
                              expires_at=utcnow() + timedelta(minutes=1))),
             opened(reopened), ev(TicketResolved(ticket_id=reopened, by="agent", agent="a")),
             opened(resolved), ev(TicketEscalated(ticket_id=resolved, reason="stuck")),
             ev(TicketReopened(ticket_id=resolved, reason="again")), ev(TicketResolved(ticket_id=resolved, by="agent")),
             opened(escalated), ev(TicketEscalated(ticket_id=escalated, reason="stuck")),
             ev(FaultReverted(fault_id=fault, reason="explicit"))]
    assert _judge(story) == []  # resolved, escalated, and reopened then resolved again: all terminal
    left = [*story, ev(TicketReopened(ticket_id=reopened, reason="the violation came back"))]
    assert _judge(left) == [f"ticket(s) left open: {reopened}"]


@pytest.mark.e2e
@pytest.mark.parametrize("trial", plan(len(WINDOWS) + 1, seed=2026), ids=lambda t: f"{t.window}-{t.service}")
def test_a_killed_service_loses_nothing_and_leaves_nothing_behind(
        trial, tmp_path: Path, nats_server: RunningServer, valkey_server: EmbeddedValkey,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", valkey_server.url)
    monkeypatch.setenv("OPLAB_AGENT_LEASE_S", "8")  # a killed agent's claim runs out soon
    monkeypatch.setenv("OPLAB_AGENT_SESSION_DEADLINE_S", "6")
    settings = LabSettings(home=tmp_path / "oplab", nats_url=nats_server.url,
                           scenario=str(brisk_scenario("ratelimiter", tmp_path, countdown_s=1.0)))
    result = run_trial(trial, settings)
    assert result.killed, result.problems
    assert result.problems == [], result.as_dict()
    assert result.outcome in ("resolved", "no_action"), result.as_dict()

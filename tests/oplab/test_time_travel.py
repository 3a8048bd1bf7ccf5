"""Time travel on a recorded run: ``oplab tickets list|show --at`` and ``oplab state --run R --at``
fold the log up to a position and answer from that, on the real ``node_kill`` run imported into a
fresh lab home (the CLI run as a subprocess, as a user runs it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.oplab.recorded_run import RUN, imported_home, oplab, purge_below, seqs_of


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_home(tmp_path_factory.mktemp("time-travel") / "oplab")


@pytest.fixture(scope="module")
def seqs(home: Path) -> dict[str, list[int]]:
    return seqs_of(home)


def tickets_at(home: Path, at: str, *more: str) -> list[dict[str, object]]:
    result = oplab("tickets", "list", "--at", at, "--json", *more, home=home)
    assert result.returncode == 0, result.stderr
    assert "the tickets as they stood at" in result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def state_at(home: Path, at: str | None = None) -> dict[str, object]:
    result = oplab("state", "--run", RUN, *(("--at", at) if at else ()), "--json", home=home)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_before_the_fault_there_are_no_tickets(home: Path, seqs: dict[str, list[int]]) -> None:
    [injected] = seqs["chaos.fault_injected"]
    assert tickets_at(home, str(injected)) == []
    assert tickets_at(home, str(injected), "--run", RUN) == []


def test_between_opening_and_resolution_the_ticket_is_being_worked(home: Path, seqs: dict[str, list[int]]) -> None:
    [opened], [claimed] = seqs["ticket.opened"], seqs["ticket.claimed"]
    [ticket] = tickets_at(home, str(opened), "--run", RUN)
    assert (ticket["status"], ticket["claimed_by"]) == ("open", None)
    [ticket] = tickets_at(home, str(claimed))
    assert ticket["status"] == "claimed" and ticket["claimed_by"]


def test_at_the_end_the_ticket_is_resolved_by_the_agent(home: Path, seqs: dict[str, list[int]]) -> None:
    [resolved] = seqs["ticket.resolved"]
    [ticket] = tickets_at(home, str(resolved))
    assert (ticket["status"], ticket["resolved_by"]) == ("resolved", "agent")
    [before] = tickets_at(home, str(resolved - 1))
    assert before["status"] == "verified"


def test_a_time_is_a_position_too(home: Path) -> None:
    end = state_at(home)["at"]
    assert isinstance(end, dict)
    [ticket] = tickets_at(home, str(end["time"]))
    assert ticket["status"] == "resolved"


def test_show_at_a_position_answers_as_the_ticket_stood(home: Path, seqs: dict[str, list[int]]) -> None:
    [opened], [diagnosed] = seqs["ticket.opened"], seqs["ticket.diagnosed"]
    ticket_id = tickets_at(home, str(opened))[0]["ticket_id"]
    shown = oplab("tickets", "show", str(ticket_id), "--at", str(diagnosed), "--json", home=home)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["status"] == "diagnosed" and doc["hypothesis"]
    early = oplab("tickets", "show", str(ticket_id), "--at", str(opened - 1), home=home)
    assert early.returncode == 1 and f"no ticket '{ticket_id}' in the ticket log at {opened - 1}" in early.stderr


def test_a_position_outside_the_log_is_refused_with_its_span(home: Path) -> None:
    result = oplab("tickets", "list", "--at", "100000", home=home)
    assert result.returncode == 2
    assert "'100000' is outside what the log holds: the log spans seq 1 (" in result.stderr
    bad = oplab("tickets", "list", "--at", "yesterday", home=home)
    assert bad.returncode == 2 and "is not a position" in bad.stderr


def test_the_state_shows_the_fault_active_only_between_injection_and_revert(
        home: Path, seqs: dict[str, list[int]]) -> None:
    [injected], [reverted] = seqs["chaos.fault_injected"], seqs["chaos.fault_reverted"]
    assert state_at(home, str(injected - 1))["faults"] == []
    for at in (injected, injected + 1, reverted - 1):
        faults = state_at(home, str(at))["faults"]
        assert isinstance(faults, list) and [(f["kind"], f["target"]) for f in faults] == [("node_kill", "node-1")]
    assert state_at(home, str(reverted))["faults"] == []
    assert state_at(home)["faults"] == []


def test_the_state_at_a_position_is_one_document_of_the_run_then(home: Path, seqs: dict[str, list[int]]) -> None:
    [opened] = seqs["ticket.opened"]
    doc = state_at(home, str(opened))
    assert set(doc) >= {"run", "at", "chapter", "faults", "tickets", "cluster"}
    assert doc["run"] == RUN and doc["at"]["seq"] == opened  # type: ignore[index]
    assert [(t["status"], t["invariant"], t["entity"]) for t in doc["tickets"]] == [  # type: ignore[union-attr]
        ("open", "node_down", "node-1")]
    nodes = {n["node"]: n["status"] for n in doc["cluster"]["nodes"]}  # type: ignore[index]
    assert nodes["node-1"] == "down" and doc["cluster"]["blind"] is False  # type: ignore[index]
    assert doc["chapter"]["title"] == "Detection"  # type: ignore[index]
    assert doc["workload"]["sent"] > 0  # type: ignore[index]


def test_the_state_reads_for_people_too(home: Path, seqs: dict[str, list[int]]) -> None:
    [claimed] = seqs["ticket.claimed"]
    result = oplab("state", "--run", RUN, "--at", str(claimed), home=home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"run {RUN} at seq {claimed} (")
    assert any(line.startswith("faults    node_kill on node-1 since") for line in lines)
    assert any(line.startswith("tickets   tk-") and "claimed" in line and "held by" in line for line in lines)
    assert any(line.startswith("cluster   node-1 down") for line in lines)
    assert f"run {RUN} as it stood at seq {claimed}" in result.stderr


def test_a_state_outside_the_run_is_refused_with_the_runs_range(home: Path) -> None:
    for at in ("0", "100000", "2020-01-01T00:00:00Z"):
        result = oplab("state", "--run", RUN, "--at", at, home=home)
        assert result.returncode == 2, (at, result.stderr)
        assert f"run {RUN} spans seq 1 (2026-12-01 20:02:18.413 UTC) to seq 108 (" in result.stderr
    missing = oplab("state", "--run", "r20200101t000000-0000", home=home)
    assert missing.returncode == 1 and "no events for run" in missing.stderr


def test_a_run_whose_beginning_aged_out_says_so_in_events_state_and_time_travel(tmp_path: Path) -> None:
    aged = imported_home(tmp_path / "oplab")
    purge_below(aged, 10)  # run.started (seq 1) and what followed it are gone
    notice = f"run {RUN} is incomplete: its beginning (run.started) aged out of the log, which now starts at seq 10"

    events = oplab("events", RUN, home=aged)
    assert events.returncode == 0 and notice in events.stderr
    assert events.stdout.split()[0] == "10"  # the story starts where the log does, and says so above
    state = oplab("state", "--run", RUN, home=aged)
    assert state.returncode == 0 and notice in state.stderr
    travelled = oplab("tickets", "list", "--run", RUN, "--at", "80", home=aged)
    assert travelled.returncode == 0 and notice in travelled.stderr
    whole = oplab("events", RUN, home=imported_home(tmp_path / "whole"))
    assert whole.returncode == 0 and "incomplete" not in whole.stderr

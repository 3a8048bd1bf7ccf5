"""Old runs stay readable: a run recorded before subjects were plug-ins (schema v1) is listed, decoded
without a single rejection, replayed in the console, re-projected and judged by today's code.

``tests/fixtures/v1-node-kill-claude.jsonl`` is a real headless ``oplab demo --fault node_kill`` run
with the Claude policy (against the fake Messages API), exported from main on 2026-12-01 (before the
subject contract), with its ticket resolved by the agent. It is imported into a fresh lab home with
``oplab import``, as a user would, and read back through every reader the lab has.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.layout import render_text
from console.live import LiveFeed
from events import Event, ObsSnapshot, WorkloadStats, decode
from events.bus import Bus
from events.settings import BusSettings
from events.subjects import ROOT, run_events
from oplab.infra import RunningServer, start_nats
from projections.ticket_log import TicketLogFeeder, TicketLogProjection, TicketLogSettings, catch_up, open_ticket_log
from subjects.ratelimiter.details import snapshot_details, workload_details
from subjects.ratelimiter.invariants import NodeDown
from tests.console.test_tmux import Pane

FIXTURE = Path(__file__).parent / "fixtures" / "v1-node-kill-claude.jsonl"
RUN = "r20261201t200214-278a"
EVENTS = 108
OPLAB = str(Path(sys.executable).parent / "oplab")


def oplab(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    return subprocess.run([OPLAB, *args], env={**env, "OPLAB_HOME": str(home)}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh lab home (no stack running) holding only the imported v1 run."""
    home = tmp_path_factory.mktemp("old-runs") / "oplab"
    result = oplab("import", str(FIXTURE), "--json", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"run": RUN, "events": EVENTS, "already": 0, "undecodable": 0}
    return home


@pytest.fixture(scope="module")
def store(home: Path) -> Iterator[RunningServer]:
    """The home's NATS store, served for in-process readers (after the CLI's own servers stopped)."""
    server = start_nats(home / "nats")
    yield server
    server.stop()


def test_every_line_of_the_fixture_is_a_v1_event_that_decodes() -> None:
    lines = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    assert len(lines) == EVENTS
    versions = {(d["data"]["type"], d["data"]["v"]) for d in lines}
    assert ("obs.snapshot", 1) in versions and ("workload.stats", 1) in versions
    decoded = [decode(json.dumps(d["data"]).encode()) for d in lines]
    assert all(isinstance(e, Event) for e in decoded), [e for e in decoded if not isinstance(e, Event)]
    snap = next(e for e in decoded if isinstance(e, Event) and e.type == "obs.snapshot")
    assert snap.v == ObsSnapshot.VERSION == 2  # read as today's version


def test_importing_the_same_run_twice_stores_nothing_twice(home: Path) -> None:
    again = oplab("import", str(FIXTURE), home=home)
    assert again.returncode == 1 and f"run {RUN} is already in the log: nothing imported" in again.stderr
    listed = oplab("events", RUN, "--json", home=home)
    assert len(listed.stdout.splitlines()) == EVENTS


def test_the_old_run_is_listed(home: Path) -> None:
    result = oplab("runs", "--json", home=home)
    assert result.returncode == 0, result.stderr
    [run] = json.loads(result.stdout)
    assert (run["run"], run["subject"], run["scenario"], run["fault"], run["outcome"]) == (
        RUN, "ratelimiter", "ratelimiter", "node_kill", "resolved")


def test_its_events_read_back_upcast_to_the_neutral_core(home: Path) -> None:
    result = oplab("events", RUN, "--type", "obs.snapshot", "--type", "workload.stats", "--json", home=home)
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    snapshots = [d for d in docs if d["type"] == "obs.snapshot"]
    assert snapshots and all(d["v"] == 2 for d in docs)
    first = snapshots[0]["data"]
    assert {n["node"] for n in first["nodes"]} == {"node-1", "node-2", "node-3"}
    assert all("address" in n and "url" not in n for n in first["nodes"])
    assert [c["name"] for c in first["components"]] == ["redis"]
    assert {"counters", "nodes", "backend"} <= set(first["details"])
    stats = [d["data"] for d in docs if d["type"] == "workload.stats"]
    assert stats and all("operations" in s and "keys" not in s for s in stats)
    assert any(o["rejected"] > 0 for s in stats for o in s["operations"])  # a v1 "blocked" is "rejected" now


async def test_it_decodes_without_a_single_rejection_and_the_subject_reads_its_details(
        store: RunningServer) -> None:
    bus = await Bus.connect(BusSettings(nats_url=store.url), source="test")
    stored: list[bytes] = []
    try:
        async def keep(seq: int, subject: str, data: bytes) -> None:
            stored.append(data)

        await bus.replay_stored(run_events(RUN), keep)
        rejected: list[Event] = []

        async def reject(d: object) -> None:
            rejected.append(d)  # type: ignore[arg-type]

        await bus.replay(f"{ROOT}.*.bus.rejected", reject)
    finally:
        await bus.close()
    assert len(stored) == EVENTS
    events = [decode(raw) for raw in stored]
    assert all(isinstance(e, Event) for e in events)
    assert rejected == []
    snapshots = [e.data for e in events if isinstance(e, Event) and isinstance(e.data, ObsSnapshot)]
    stats = [e.data for e in events if isinstance(e, Event) and isinstance(e.data, WorkloadStats)]
    details = snapshot_details(snapshots[0])
    assert len(details.counters) == 5 and details.backend is not None and details.backend.ok
    assert set(details.nodes) == {"node-1", "node-2", "node-3"} and all(p.pid for p in details.nodes.values())
    assert workload_details(stats[0]).limits == {c.key: c.limit for c in details.counters}


async def test_todays_invariants_judge_the_old_snapshots_as_the_monitor_did(store: RunningServer) -> None:
    bus = await Bus.connect(BusSettings(nats_url=store.url), source="test")
    events: list[Event] = []

    async def collect(d: object) -> None:
        events.append(d.event)  # type: ignore[attr-defined]

    try:
        await bus.replay(run_events(RUN), collect)
    finally:
        await bus.close()
    [violated] = [e.data for e in events if e.type == "inv.violated"]
    snapshots = [e.data for e in events if isinstance(e.data, ObsSnapshot)]
    before = [s for s in snapshots if s.observed_at <= violated.first_seen]
    found = NodeDown().evaluate(before, [])
    assert [(v.invariant, v.entity) for v in found] == [(violated.invariant, violated.entity)]
    assert NodeDown().evaluate(snapshots[:3], []) == []  # healthy before the fault


async def test_it_replays_in_the_console(store: RunningServer) -> None:
    bus = await Bus.connect(BusSettings(nats_url=store.url), source="test")
    feed = LiveFeed(bus, RUN)
    try:
        await feed.start(follow=False)
    finally:
        await feed.stop()
        await bus.close()
    view = feed.view
    assert view.events == EVENTS
    summary = view.timeline.summary()
    assert (summary.outcome, summary.resolved_by, summary.fault) == ("resolved", "agent", "node_kill")
    assert summary.ttd_s is not None and summary.ttm_s is not None
    screen = "\n".join(render_text(view, (200, 60), view.cluster.snapshot_at or summary.started_at))  # type: ignore[arg-type]
    assert "redis    OK" in screen
    assert "api:checkout" in screen  # the rate limiter's own workload rows, from the old run's details
    assert screen.count("UP  ") == 3
    assert "resolved" in screen and "restart_node" in screen


async def test_it_is_re_projected_into_the_ticket_log(store: RunningServer, tmp_path: Path) -> None:
    bus = await Bus.connect(BusSettings(nats_url=store.url), source="test")
    view = open_ticket_log(TicketLogSettings(ticketlog_url=f"sqlite:///{tmp_path / 'ticketlog.sqlite'}"))
    try:
        folded = await catch_up(bus, TicketLogFeeder(TicketLogProjection(view)))
        [ticket] = view.list_tickets(run=RUN)
    finally:
        view.close()
        await bus.close()
    assert folded == EVENTS
    assert (ticket.status, ticket.resolved_by, ticket.invariant, ticket.subject) == (
        "resolved", "agent", "node_down", "ratelimiter")
    assert [(a.tool, a.ok) for a in ticket.actions] == [("restart_node", True)]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
async def test_the_console_program_replays_it(home: Path, store: RunningServer, tmp_path: Path) -> None:
    """`oplab console --run R --replay --speed 0` (the final screen at once), in a real terminal, on the log
    holding the imported run."""
    socket = tmp_path / "tmux.sock"
    pane = Pane("replay", socket)
    env = f"OPLAB_HOME={shlex.quote(str(home))} NATS_URL={shlex.quote(store.url)}"
    command = f"env -u OPLAB_NATS_URL {env} {shlex.quote(OPLAB)} console --run {RUN} --replay --speed 0"
    pane.tmux("new-session", "-d", "-s", pane.session, "-x", "200", "-y", "60", "sh", "-c", command)
    try:
        screen = await pane.wait_for("resolved by agent")
        assert "node-1" in screen and "redis" in screen
        pane.keys("q")
        await pane.wait(lambda: not pane.alive(), "console exited after q", timeout_s=15)
    finally:
        pane.tmux("kill-server", check=False)


def test_its_events_can_be_browsed_by_type_glob_correlation_and_range(home: Path) -> None:
    tickets = oplab("events", RUN, "--type", "ticket.*", "--json", home=home)
    assert tickets.returncode == 0, tickets.stderr
    docs = [json.loads(line) for line in tickets.stdout.splitlines()]
    assert docs and all(d["type"].startswith("ticket.") for d in docs)
    assert [d["seq"] for d in docs] == sorted(d["seq"] for d in docs)  # in stream order, each with its seq
    ticket = docs[0]["data"]["ticket_id"]
    about = [json.loads(line) for line in oplab("events", RUN, "--correlation", ticket, "--json",
                                                  home=home).stdout.splitlines()]
    assert {d["type"] for d in about} >= {"ticket.opened", "ticket.resolved"}
    assert all(d["data"].get("ticket_id") == ticket or d.get("correlation") == ticket for d in about)
    first, last = docs[0]["seq"], docs[-1]["seq"]
    ranged = oplab("events", RUN, "--since", str(first), "--until", str(first), "--json", home=home)
    assert [json.loads(line)["seq"] for line in ranged.stdout.splitlines()] == [first] != [last]
    bad = oplab("events", RUN, "--since", "yesterday", home=home)
    assert bad.returncode == 2 and "is not a position" in bad.stderr

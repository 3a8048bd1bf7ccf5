"""`oplab events RUN` (filters, ``--follow``) and `oplab events show SEQ|ID`, run as a user runs them.

The CLI runs as a subprocess against the test NATS (``NATS_URL``); the events it reads are published
with the test bus, each test in a run of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from events import (
    Event,
    FaultInjected,
    InvariantViolated,
    ObsSnapshot,
    ServiceHeartbeat,
    TicketClaimed,
    TicketOpened,
    TicketResolved,
    new_event,
)
from events.bus import Bus
from events.envelope import utcnow
from events.ids import new_event_id
from events.settings import STREAM_NAME
from oplab.infra import RunningServer
from tests.child_processes import Children

OPLAB = str(Path(sys.executable).parent / "oplab")
TICKET, FAULT = "tk-00000000e1", "f-00000000e1"
LINE_S = 1.0  # a followed event is printed within this


def cli_env(nats_server: RunningServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    return {**env, "NATS_URL": nats_server.url, "OPLAB_HOME": str(tmp_path / "oplab")}


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    def docs(self) -> list[dict]:  # type: ignore[type-arg]
        return [json.loads(line) for line in self.stdout.splitlines()]


async def oplab(env: dict[str, str], *args: str) -> Done:
    proc = await asyncio.create_subprocess_exec(OPLAB, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Done(proc.returncode, out.decode(), err.decode())


@dataclass
class Story:
    run: str
    events: list[tuple[int, Event]]

    def seq_of(self, type_name: str) -> int:
        return next(seq for seq, e in self.events if e.type == type_name)

    def event_of(self, type_name: str) -> Event:
        return next(e for _, e in self.events if e.type == type_name)


async def publish_story(bus: Bus, run: str) -> Story:
    """A fault, the snapshot that shows it, the violation, a ticket claimed and resolved by an agent."""
    now = utcnow()

    def ev(data, source: str = "monitor/m1", correlation: str | None = None,  # type: ignore[no-untyped-def]
           causation: Event | None = None) -> Event:
        return new_event(data, run=run, source=source, correlation=correlation, causation=causation)

    heartbeat = ev(ServiceHeartbeat(service="monitor", instance="m1", version="t", pid=1, uptime_s=1))
    injected = ev(FaultInjected(fault_id=FAULT, kind="node_kill", target="node-1",
                                expires_at=now + timedelta(seconds=60)), source="chaos/c1", correlation=FAULT)
    snapshot = ev(ObsSnapshot(subject="ratelimiter", ok=True, observed_at=now))
    violated = ev(InvariantViolated(invariant="node_down", entity="node-1", first_seen=now),
                  correlation="node_down:node-1", causation=snapshot)
    opened = ev(TicketOpened(ticket_id=TICKET, invariant="node_down", entity="node-1", subject="ratelimiter",
                             summary="node-1 is down", first_seen=now), correlation=TICKET, causation=violated)
    claimed = ev(TicketClaimed(ticket_id=TICKET, agent="agent/a1", policy="rules", lease_until=now),
                 source="agent/a1", correlation=TICKET, causation=opened)
    resolved = ev(TicketResolved(ticket_id=TICKET, by="agent"), source="agent/a1", correlation=TICKET,
                  causation=claimed)
    stored = [(await bus.publish(e), e) for e in (heartbeat, injected, snapshot, violated, opened, claimed, resolved)]
    return Story(run, stored)


@pytest.fixture
def env(nats_server: RunningServer, tmp_path: Path) -> dict[str, str]:
    return cli_env(nats_server, tmp_path)


@pytest.fixture
async def story(bus: Bus, run_id: str) -> Story:
    return await publish_story(bus, run_id)


# -- filters -------------------------------------------------------------------------------------------

async def test_filters_combine_on_the_command_line(env: dict[str, str], story: Story) -> None:
    claimed = story.seq_of("ticket.claimed")
    done = await oplab(env, "events", story.run, "--type", "ticket.*", "--type", "chaos", "--source", "agent",
                       "--correlation", TICKET, "--since", str(claimed), "--json")
    assert done.code == 0, done.stderr
    assert [(d["seq"], d["type"]) for d in done.docs()] == [(claimed, "ticket.claimed"),
                                                            (story.seq_of("ticket.resolved"), "ticket.resolved")]
    monitor = await oplab(env, "events", story.run, "--source", "monitor", "--until",
                          str(story.seq_of("inv.violated")), "--type", "obs.*", "--type", "inv")
    assert monitor.code == 0, monitor.stderr
    assert [line.split()[2] for line in monitor.stdout.splitlines()] == ["obs.snapshot", "inv.violated"]


async def test_a_bad_position_is_bad_usage(env: dict[str, str], story: Story) -> None:
    done = await oplab(env, "events", story.run, "--since", "yesterday")
    assert done.code == 2 and "is not a position" in done.stderr


# -- events show -----------------------------------------------------------------------------------------

async def test_show_by_sequence_gives_the_event_its_causes_to_the_root_and_its_correlated_events(
        env: dict[str, str], story: Story) -> None:
    seq = story.seq_of("ticket.resolved")
    done = await oplab(env, "events", "show", str(seq), "--json")
    assert done.code == 0, done.stderr
    [doc] = done.docs()
    assert doc["seq"] == seq and doc["id"] == story.event_of("ticket.resolved").id
    assert doc["data"]["ticket_id"] == TICKET
    assert [(c["type"], c["seq"]) for c in doc["causation_chain"]] == [
        (t, story.seq_of(t)) for t in ("ticket.claimed", "ticket.opened", "inv.violated", "obs.snapshot")]
    assert [(c["type"], c["seq"]) for c in doc["correlated"]] == [
        (t, story.seq_of(t)) for t in ("ticket.opened", "ticket.claimed")]


async def test_show_by_id_looks_in_the_run_given_or_the_whole_log(env: dict[str, str], story: Story) -> None:
    reverted_cause = story.event_of("chaos.fault_injected")
    for scope in ((), ("--run", story.run)):
        done = await oplab(env, "events", "show", reverted_cause.id, *scope, "--json")
        assert done.code == 0, done.stderr
        [doc] = done.docs()
        assert doc["seq"] == story.seq_of("chaos.fault_injected") and doc["causation_chain"] == []
    other_run = await oplab(env, "events", "show", reverted_cause.id, "--run", "r20200101t000000-none")
    assert other_run.code == 1 and "no event with id" in other_run.stderr


async def test_show_for_people_names_each_part(env: dict[str, str], story: Story) -> None:
    done = await oplab(env, "events", "show", str(story.seq_of("ticket.opened")))
    assert done.code == 0, done.stderr
    assert done.stdout.startswith(f"ticket.opened (seq {story.seq_of('ticket.opened')}, v1)")
    assert '"ticket_id": "tk-00000000e1"' in done.stdout  # the data, pretty
    caused_by = done.stdout.split("caused by")[1].split("correlated")[0]
    assert "inv.violated" in caused_by and "obs.snapshot" in caused_by
    assert "correlated (2)" in done.stdout


async def test_a_cause_missing_from_the_log_ends_the_chain_with_a_note(env: dict[str, str], bus: Bus,
                                                                        run_id: str) -> None:
    command_id = new_event_id()  # the id of something never stored
    event = new_event(ServiceHeartbeat(service="agent", instance="a1", version="t", pid=1, uptime_s=1),
                      run=run_id, source="agent/a1", causation=command_id)
    seq = await bus.publish(event)
    done = await oplab(env, "events", "show", str(seq), "--json")
    assert done.code == 0, done.stderr
    assert done.docs()[0]["causation_chain"] == [{"missing": command_id, "note": done.docs()[0][
        "causation_chain"][0]["note"]}]
    human = await oplab(env, "events", "show", str(seq))
    assert f"missing: {command_id} (not in the log" in human.stdout


async def test_what_is_not_there_or_not_an_event_is_said_clearly(env: dict[str, str], bus: Bus,
                                                                  run_id: str) -> None:
    garbage = (await bus.js.publish(f"lab.{run_id}.svc.heartbeat", b"not json", stream=STREAM_NAME)).seq
    done = await oplab(env, "events", "show", str(garbage))
    assert done.code == 1 and f"the message at sequence {garbage}" in done.stderr and "is not an event" in done.stderr
    beyond = await oplab(env, "events", "show", str(garbage + 10_000))
    assert beyond.code == 1 and f"no message at sequence {garbage + 10_000}" in beyond.stderr
    unknown = await oplab(env, "events", "show", new_event_id())
    assert unknown.code == 1 and "no event with id" in unknown.stderr
    blank = await oplab(env, "events", "show", " ")
    assert blank.code == 2


# -- --follow --------------------------------------------------------------------------------------------

@dataclass
class Follower:
    proc: asyncio.subprocess.Process

    async def line(self, within_s: float = LINE_S) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), within_s)
        assert raw, "the follower ended"
        return raw.decode()

    async def note(self, within_s: float = 30) -> str:
        """The follower's next stderr line (it says there when it follows live)."""
        assert self.proc.stderr is not None
        return (await asyncio.wait_for(self.proc.stderr.readline(), within_s)).decode()

    async def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.proc.wait(), 15)


@pytest.fixture
async def follow(env: dict[str, str]) -> AsyncIterator:  # type: ignore[type-arg]
    children = Children()

    async def start(*args: str) -> Follower:
        proc = await asyncio.create_subprocess_exec(OPLAB, "events", *args, "--follow", env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return Follower(children.add(proc))

    yield start
    await children.kill_running()


async def test_follow_prints_the_stored_matches_then_a_new_event_within_a_second_and_ctrl_c_ends_it_cleanly(
        follow, bus: Bus, story: Story) -> None:  # type: ignore[no-untyped-def]
    follower = await follow(story.run, "--type", "ticket.*", "--json")
    stored = [json.loads(await follower.line(30)) for _ in range(3)]
    assert [d["type"] for d in stored] == ["ticket.opened", "ticket.claimed", "ticket.resolved"]
    assert "following run" in await follower.note()
    await bus.publish(new_event(ServiceHeartbeat(service="x", instance="y", version="t", pid=1, uptime_s=1),
                                run=story.run, source="x/y"))  # filtered out
    reopened = new_event(TicketOpened(ticket_id="tk-00000000e2", invariant="node_down", entity="node-2",
                                      subject="ratelimiter", summary="down", first_seen=utcnow()),
                         run=story.run, source="monitor/m1", correlation="tk-00000000e2")
    seq = await bus.publish(reopened)
    doc = json.loads(await follower.line())
    assert (doc["seq"], doc["id"], doc["type"]) == (seq, reopened.id, "ticket.opened")
    code = await follower.stop()
    assert follower.proc.stderr is not None
    rest = (await follower.proc.stderr.read()).decode()
    assert code == 130 and "Traceback" not in rest, rest


async def test_a_run_with_no_events_yet_is_waited_for(follow, bus: Bus, run_id: str) -> None:  # type: ignore[no-untyped-def]
    follower = await follow(run_id, "--json")
    assert "has no events yet: waiting" in await follower.note()
    first = new_event(ServiceHeartbeat(service="monitor", instance="m1", version="t", pid=1, uptime_s=1),
                      run=run_id, source="monitor/m1")
    await bus.publish(first)
    assert json.loads(await follower.line())["id"] == first.id
    assert await follower.stop() == 130


async def test_follow_ends_by_itself_once_a_future_until_has_passed(follow, bus: Bus, story: Story) -> None:  # type: ignore[no-untyped-def]
    # a sequence still to come (a future time would race the CLI's start on a busy machine)
    until = await bus.last_seq() + 2
    follower = await follow(story.run, "--type", "svc", "--until", str(until), "--json")
    assert json.loads(await follower.line(30))["type"] == "svc.heartbeat"  # the stored one
    assert "following run" in await follower.note()
    beats = [new_event(ServiceHeartbeat(service="monitor", instance="m1", version="t", pid=1, uptime_s=n),
                       run=story.run, source="monitor/m1") for n in (2, 3)]
    seqs = [await bus.publish(beat) for beat in beats]
    within = [b.id for b, seq in zip(beats, seqs, strict=True) if seq <= until]
    assert within, "the first beat is within the bound"
    assert [json.loads(await follower.line())["id"] for _ in within] == within
    assert await asyncio.wait_for(follower.proc.wait(), 15) == 0


async def test_following_a_type_no_event_can_have_is_bad_usage(env: dict[str, str], story: Story) -> None:
    done = await oplab(env, "events", story.run, "--type", "tickets.*", "--follow")
    assert done.code == 2 and "no event type matches tickets.*" in done.stderr


async def test_a_reader_that_closes_the_pipe_ends_the_following(env: dict[str, str], bus: Bus,
                                                                run_id: str) -> None:
    shell = await asyncio.create_subprocess_exec(
        "sh", "-c", f"{OPLAB} events {run_id} --follow --json | head -n 1", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert shell.stdout is not None and shell.stderr is not None
    assert "waiting" in (await asyncio.wait_for(shell.stderr.readline(), 30)).decode()

    def beat(n: int) -> Event:
        return new_event(ServiceHeartbeat(service="x", instance="y", version="t", pid=1, uptime_s=n),
                         run=run_id, source="x/y")

    first = beat(1)
    await bus.publish(first)
    assert json.loads(await asyncio.wait_for(shell.stdout.readline(), 10))["id"] == first.id  # head is done
    await bus.publish(beat(2))  # written into the closed pipe: the follower ends
    assert await asyncio.wait_for(shell.wait(), 15) == 0
    assert "Traceback" not in (await shell.stderr.read()).decode()


async def test_ctrl_c_stops_the_nats_server_a_follower_started_on_a_stopped_labs_store(tmp_path: Path) -> None:
    fixture = Path(__file__).parents[2] / "fixtures" / "v1-node-kill-claude.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    env["OPLAB_HOME"] = str(tmp_path / "oplab")
    imported = await oplab(env, "import", str(fixture), "--json")
    assert imported.code == 0, imported.stderr
    run = json.loads(imported.stdout)["run"]
    proc = await asyncio.create_subprocess_exec(OPLAB, "events", run, "--type", "run.*", "--follow", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    assert "following run" in (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    servers = await servers_on(tmp_path)
    assert servers, "the follower reads through an embedded nats-server"
    exits = [process_exit(int(pid)) for pid in servers]
    proc.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(proc.wait(), 15) == 130
    await asyncio.wait_for(asyncio.gather(*exits), 10)  # the server stops with its last reader
    assert not await servers_on(tmp_path)


def process_exit(pid: int) -> asyncio.Future[None]:
    """Done when process ``pid`` (not our child) has exited: its pidfd becomes readable."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        done.set_result(None)
        return done

    def exited() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, exited)
    return done


async def servers_on(home: Path) -> list[str]:
    """Pids of nats-servers whose command line names a directory under ``home``."""
    pgrep = await asyncio.create_subprocess_exec("pgrep", "-f", f"nats-server.*{home}",
                                                 stdout=asyncio.subprocess.PIPE)
    out, _ = await pgrep.communicate()
    return out.decode().split()


async def test_types_explains_the_catalogue_without_a_lab(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    env["OPLAB_HOME"] = str(tmp_path / "no-lab")
    done = await oplab(env, "events", "types", "ticket", "--json")
    assert done.code == 0, done.stderr
    [docs] = done.docs()
    assert {d["type"] for d in docs} >= {"ticket.opened", "ticket.resolved"}
    assert all(d["type"].startswith("ticket.") and d["meaning"] and d["schema"]["type"] == "object" for d in docs)
    people = await oplab(env, "events", "types", "run.started")
    assert people.code == 0 and people.stdout.startswith("run.started (v1)\n")
    assert "    fault: str | None = None" in people.stdout.splitlines()
    unknown = await oplab(env, "events", "types", "tick")
    assert unknown.code == 2 and "no event type matches tick" in unknown.stderr

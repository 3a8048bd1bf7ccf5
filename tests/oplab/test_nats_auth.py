"""Least privilege on the bus, enforced by the NATS server: each role publishes only its own facts
and commands, nobody connects without a user, and a forged fact is never stored."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from events import (
    FaultReverted,
    InvariantCleared,
    ObsSnapshot,
    ServiceHeartbeat,
    TicketResolved,
    TrialFinished,
    WorkloadStats,
    new_event,
)
from events.bus import STREAM_NAME, Bus, BusRefused
from events.codec import encode
from events.envelope import utcnow
from events.settings import BusSettings
from events.subjects import ALL_COMMANDS, any_run_domain, event_subject, service_commands
from oplab.infra import RunningServer, free_port, start_nats
from oplab.nats_auth import ADMIN, READ, ROLES, SECRETS, LabCredentials

RUN = "r20261202t000000-auth"


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="module")
def credentials(lab_home: Path) -> LabCredentials:
    return LabCredentials.create(lab_home)


@pytest.fixture(scope="module")
def secured(lab_home: Path, credentials: LabCredentials) -> Iterator[RunningServer]:
    port = free_port()
    conf = credentials.write_server_config(lab_home / "nats.conf", port, lab_home / "nats" / "js")
    server = start_nats(lab_home / "nats", port=port, config=conf)
    yield server
    server.stop()


@pytest.fixture
async def connect(secured: RunningServer, credentials: LabCredentials) -> AsyncIterator:  # type: ignore[type-arg]
    buses: list[Bus] = []

    async def as_role(role: str) -> Bus:
        bus = await Bus.connect(BusSettings(nats_url=credentials.url(secured.url, role)), source=f"{role}/t",
                                ensure_stream=role == ADMIN, connect_timeout_s=5)
        buses.append(bus)
        return bus

    await as_role(ADMIN)  # the launcher creates the stream
    yield as_role
    for bus in buses:
        await bus.close()


def forged(data):  # type: ignore[no-untyped-def]
    return new_event(data, run=RUN, source="forger")


FORGERIES = {
    "ticket.resolved": forged(TicketResolved(ticket_id="tk-0000000001", by="agent")),
    "inv.cleared": forged(InvariantCleared(invariant="node_down", entity="node-1", first_seen=utcnow(),
                                           violated_for_s=1.0)),
    "chaos.fault_reverted": forged(FaultReverted(fault_id="f-0000000001", reason="explicit")),
    "obs.snapshot": forged(ObsSnapshot(subject="ratelimiter", ok=True)),
    "workload.stats": forged(WorkloadStats(interval_s=1.0)),
    "campaign.trial_finished": forged(TrialFinished(campaign=RUN, trial=1, run="r1", outcome="resolved")),
}

ALLOWED = {  # role -> the forgeries' types it may publish
    "monitor": {"ticket.resolved", "inv.cleared", "obs.snapshot"},
    "agent": {"ticket.resolved"},
    "chaos": {"chaos.fault_reverted"},
    "director": set(),
    "loadgen": {"workload.stats"},
    "projector": set(),
    "operator": {"ticket.resolved", "campaign.trial_finished"},  # the CLI runs campaigns (oplab eval)
    "viewer": set(),
}


def test_every_role_is_covered() -> None:
    assert set(ALLOWED) == set(ROLES)


def facts(*domains: str) -> list[str]:
    return [any_run_domain(d) for d in domains]


SERVICE = [*READ, f"$JS.API.STREAM.CREATE.{STREAM_NAME}", *facts("svc", "bus")]
PERMISSIONS = {  # role -> (what it publishes, the commands it answers), in the subject scheme's words
    "monitor": ([*SERVICE, *facts("obs", "inv", "ticket")], []),
    "agent": ([*SERVICE, *facts("ticket", "agent")], []),
    "chaos": ([*SERVICE, *facts("chaos")], [service_commands("chaos")]),
    "director": ([*SERVICE, *facts("director", "run"), service_commands("chaos")], [service_commands("director")]),
    "loadgen": ([*SERVICE, *facts("workload")], []),
    "projector": (SERVICE, []),
    "operator": ([*READ, *facts("ticket", "campaign"), ALL_COMMANDS], []),
    "viewer": ([*READ, service_commands("director")], []),
}


def test_each_role_s_permissions_are_the_subject_scheme_s_filters() -> None:
    assert set(PERMISSIONS) == set(ROLES)
    for role, (publish, answers) in PERMISSIONS.items():
        subscribe = ["_INBOX.>", *answers, *(["$SRV.>"] if answers else [])]  # micro discovery for who answers
        assert ROLES[role].permissions() == {"publish": {"allow": publish}, "subscribe": {"allow": subscribe},
                                             "allow_responses": True}, role


@pytest.mark.parametrize("role", sorted(ROLES))
async def test_each_role_publishes_its_own_facts_and_the_server_refuses_the_rest(
        role: str, connect, secured: RunningServer) -> None:  # type: ignore[no-untyped-def]
    bus = await connect(role)
    for type_name, event in FORGERIES.items():
        if type_name in ALLOWED[role]:
            assert await bus.publish(event, retry_for_s=0) > 0
            continue
        before = await (await connect(ADMIN)).last_seq()
        with pytest.raises(NatsError):  # no ack: the server dropped it (Permissions Violation)
            await bus.nc.jetstream(timeout=0.5).publish(event_subject(event), encode(event), stream=STREAM_NAME)
        assert await (await connect(ADMIN)).last_seq() == before, f"{role} stored a forged {type_name}"
    if role in ("monitor", "agent", "chaos", "director", "loadgen", "projector"):
        beat = forged(ServiceHeartbeat(service=role, instance="t", version="t", pid=1, uptime_s=1.0))
        assert await bus.publish(beat, retry_for_s=0) > 0  # every service records its own life


async def test_every_role_can_read_the_log(connect) -> None:  # type: ignore[no-untyped-def]
    admin = await connect(ADMIN)
    await admin.publish(forged(ServiceHeartbeat(service="x", instance="t", version="t", pid=1, uptime_s=1.0)))
    for role in ROLES:
        bus = await connect(role)
        seen = asyncio.Event()

        async def got(_d, seen=seen) -> None:  # type: ignore[no-untyped-def]
            seen.set()

        replay = await bus.replay(f"lab.{RUN}.svc.>", got, follow=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(seen.wait(), 5)
        await replay.stop()
        assert seen.is_set(), f"{role} could not read the log"


async def test_commands_reach_only_who_may_send_them(connect, secured: RunningServer,
                                                     credentials: LabCredentials) -> None:  # type: ignore[no-untyped-def]
    chaos = await connect("chaos")
    answered: list[str] = []

    async def answer(msg) -> None:  # type: ignore[no-untyped-def]
        answered.append(msg.subject)
        await msg.respond(b"{}")

    await chaos.nc.subscribe("cmd.chaos.>", cb=answer)
    await chaos.nc.flush()
    stolen: list[str] = []

    async def steal(msg) -> None:  # type: ignore[no-untyped-def]
        stolen.append(msg.subject)

    agent = await connect("agent")  # only chaos may listen on chaos commands: nobody can stand in for it
    await agent.nc.subscribe("cmd.chaos.>", cb=steal)
    await agent.nc.flush()
    for role in ("director", "operator"):
        assert (await (await connect(role)).nc.request("cmd.chaos.list", b"{}", timeout=5)).data == b"{}"
    for role in ("viewer", "agent", "monitor"):
        with pytest.raises(NatsError):
            await (await connect(role)).nc.request("cmd.chaos.inject", b"{}", timeout=1)
    assert answered == ["cmd.chaos.list", "cmd.chaos.list"] and stolen == []


async def test_anonymous_and_wrong_passwords_are_refused(secured: RunningServer,
                                                         credentials: LabCredentials) -> None:
    for url in (secured.url, credentials.url(secured.url, "viewer").replace("viewer:", "viewer:x")):
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(url, allow_reconnect=False, connect_timeout=3)


async def test_a_refused_bus_connection_fails_at_once_and_says_who_was_refused(
        secured: RunningServer, credentials: LabCredentials) -> None:
    wrong = credentials.url(secured.url, "viewer").replace("viewer:", "viewer:x")
    for url, who in ((secured.url, "anonymous connections are refused"), (wrong, "user 'viewer'")):
        with pytest.raises(BusRefused, match=who) as refused:
            await asyncio.wait_for(Bus.connect(BusSettings(nats_url=url), source="cli/t"), 10)  # not for ever
        assert "x" + credentials.passwords["viewer"] not in str(refused.value)  # no secret in the message


def test_the_secrets_are_owner_only(lab_home: Path, secured: RunningServer) -> None:
    for name in ("nats-auth.json", "nats.conf"):
        assert (lab_home / name).stat().st_mode & 0o777 == 0o600


OPLAB = str(Path(sys.executable).parent / "oplab")


def nats_auth(directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPLAB, "nats-auth", str(directory), "--json"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


def test_the_compose_init_writes_a_password_per_role_and_keeps_them(tmp_path: Path) -> None:
    directory = tmp_path / "auth"
    first = nats_auth(directory)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["passwords"] == "generated"
    written = LabCredentials.from_dir(directory)
    assert written is not None and set(written.passwords) == set(SECRETS)
    assert all((directory / role).stat().st_mode & 0o777 == 0o600 for role in written.passwords)
    assert not any(pw in first.stdout + first.stderr for pw in written.passwords.values())  # nothing printed
    assert json.loads(nats_auth(directory).stdout)["passwords"] == "kept"
    assert LabCredentials.from_dir(directory) == written  # a restarted project keeps its users

    for n, host in enumerate(("nats", "nats-2", "nats-3"), start=1):  # the compose cluster profile's members
        member = (directory / f"nats-cluster-{n}.conf").read_text()
        assert f'server_name: "{host}"' in member
        assert all(f"@{h}:6222" in member for h in ("nats", "nats-2", "nats-3"))

    given = LabCredentials.generate()
    handed = nats_auth(directory, OPLAB_NATS_AUTH=given.to_json())
    assert json.loads(handed.stdout)["passwords"] == "given" and LabCredentials.from_dir(directory) == given
    bad = nats_auth(directory, OPLAB_NATS_AUTH='{"viewer": "x"}')
    assert bad.returncode == 2 and "a password for each of" in bad.stderr
    assert LabCredentials.from_dir(directory) == given  # bad input loses nothing


async def test_a_service_connects_as_the_role_it_plays_from_the_password_directory(tmp_path: Path) -> None:
    directory = tmp_path / "auth"
    assert nats_auth(directory).returncode == 0
    credentials = LabCredentials.from_dir(directory)
    assert credentials is not None
    port = free_port()
    conf = credentials.write_server_config(tmp_path / "nats.conf", port, tmp_path / "js")
    server = start_nats(tmp_path / "nats", port=port, config=conf)
    try:
        settings = BusSettings(nats_url=server.url, nats_auth_dir=directory)
        admin = await Bus.connect(settings.for_role(ADMIN), source="admin/t")
        monitor = await Bus.connect(settings.for_role("monitor"), source="monitor/t", ensure_stream=False)
        assert await monitor.publish(forged(ObsSnapshot(subject="ratelimiter", ok=True)), retry_for_s=0) > 0
        with pytest.raises(NatsError):
            event = FORGERIES["chaos.fault_reverted"]
            await monitor.nc.jetstream(timeout=0.5).publish(event_subject(event), encode(event), stream=STREAM_NAME)
        await monitor.close()
        await admin.close()
    finally:
        server.stop()
    with pytest.raises(ValueError, match="cannot read its password file"):
        BusSettings(nats_auth_dir=tmp_path / "nowhere").for_role("monitor").credentials()

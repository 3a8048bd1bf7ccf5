"""The agent against real servers: NATS, valkey, a rate limiter cluster under supervisord, and a
fake Messages API (a real HTTP server on 127.0.0.1) that the real ``anthropic`` client reaches
through ``base_url``.

Agents run in-process (``AgentService.main`` on the test's loop, each with its own bus
connection and toolbox) or as child processes (``python -m services.agent``) where a test
needs to kill one. Tickets are opened the way the monitor opens them (``inv.violated``, then
``ticket.opened`` through the TicketStore), or by the real monitor on a real injected fault.
Nothing of ours is mocked; waits are on events with deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from events import InvariantCleared, InvariantViolated, TicketOpened, new_ticket_id
from events.bus import Bus
from events.envelope import utcnow
from events.settings import BusSettings
from services.agent.bootstrap import build as build_agent
from services.agent.service import AgentService
from services.agent.settings import AgentSettings
from services.monitor.bootstrap import build as build_monitor
from services.monitor.service import MonitorService
from services.runtime import ServiceSettings
from subjects.contract import Toolbox
from subjects.ratelimiter.observer import RateLimiterObserver
from subjects.ratelimiter.toolbox import RateLimiterToolbox
from tests.e2e.conftest import RunLog
from tests.fakes.anthropic_server import FakeAnthropic
from tests.servers import EmbeddedValkey
from tests.subjects.ratelimiter.conftest import Cluster, running_cluster, settings_env
from tickets import Ticket, TicketStore

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="package")
async def fake_api() -> AsyncIterator[FakeAnthropic]:
    server = FakeAnthropic()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def api(fake_api: FakeAnthropic) -> AsyncIterator[FakeAnthropic]:
    """The package's fake API, with no script and no recorded requests; restarted if a test stopped it."""
    fake_api.reset()
    if fake_api._runner is None:
        await fake_api.start()
    yield fake_api
    # every request the client sent must be one the real API accepts (the fake enforces its rules)
    refused = [r.get("rejected") for r in fake_api.rejected]
    fake_api.reset()
    assert refused == [], f"the client sent requests the Messages API refuses: {refused}"


@pytest.fixture(scope="package")
async def agent_cluster(valkey_server: EmbeddedValkey, tmp_path_factory: pytest.TempPathFactory
                        ) -> AsyncIterator[Cluster]:
    """Three rate limiter nodes under supervisord, shared by the package (tests leave it healthy)."""
    async with running_cluster(tmp_path_factory.mktemp("agent-cluster"), valkey_server.url) as c:
        yield c


def claude_config(api: FakeAnthropic, **overrides: Any) -> AgentSettings:
    values: dict[str, Any] = dict(policy="claude", api_key=api.api_key, base_url=api.url, model="claude-sonnet-4-6",
                                  lease_s=20.0, session_deadline_s=15.0, verify_timeout_s=3.0, max_steps=8,
                                  max_retries=2, request_timeout_s=10.0)
    values.update(overrides)
    return AgentSettings(**values)


@dataclass
class RunningAgent:
    service: AgentService
    bus: Bus
    task: asyncio.Task[None]
    instance: str

    @property
    def agent_id(self) -> str:
        return self.service.agent_id

    async def stop(self) -> None:
        if self.task.done():
            return
        await self.service.stop()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(self.task, 10)
        await self.service.stop_feeds()
        await self.bus.close()


@dataclass
class AgentLab:
    """One run on the test servers: its log, tickets, and agents working it."""

    bus: Bus
    bus_settings: BusSettings
    run: str
    cluster: Cluster
    log: RunLog
    agents: list[RunningAgent] = field(default_factory=list)
    services: list[Any] = field(default_factory=list)
    procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def store(self) -> TicketStore:
        return TicketStore(self.bus, self.run)

    async def start_agent(self, config: AgentSettings, instance: str = "a1", policy: Any = None,
                          toolbox: Toolbox | None = None) -> RunningAgent:
        bus = await Bus.connect(self.bus_settings, source=f"agent/{instance}")
        service = build_agent(bus, ServiceSettings(run=self.run, instance=instance),
                              toolbox=toolbox or RateLimiterToolbox(self.cluster.settings), policy=policy,
                              config=config)
        task = asyncio.create_task(service.main())
        await asyncio.wait_for(service.ready.wait(), 15)
        agent = RunningAgent(service, bus, task, instance)
        self.agents.append(agent)
        return agent

    async def start_monitor(self) -> MonitorService:
        bus = await Bus.connect(self.bus_settings, source="monitor/m1")
        monitor = build_monitor(bus, ServiceSettings(run=self.run, instance="m1"),
                                observer=RateLimiterObserver(self.cluster.settings))
        task = asyncio.create_task(monitor.main())
        await asyncio.wait_for(monitor.ready.wait(), 15)
        self.services.append((monitor, bus, task))
        return monitor

    async def spawn_agent(self, env: dict[str, str], instance: str, log: Path | None = None
                          ) -> asyncio.subprocess.Process:
        """``python -m services.agent`` as a child process on this run (its log lines to ``log``)."""
        full = {k: v for k, v in settings_env(self.cluster.settings).items()
                if not k.startswith(("OPLAB_AGENT_", "ANTHROPIC_", "OPLAB_APPROVAL"))}
        full.update({"NATS_URL": self.bus_settings.nats_url, "OPLAB_RUN": self.run, "OPLAB_INSTANCE": instance,
                     "PYTHONPATH": str(REPO), **env})
        sink = log.open("wb") if log is not None else asyncio.subprocess.DEVNULL
        try:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.agent", env=full, cwd=REPO,
                                                        stdout=sink, stderr=sink)
        finally:
            if log is not None:
                sink.close()  # type: ignore[union-attr]
        self.procs.append(proc)
        return proc

    async def open_ticket(self, invariant: str, entity: str, evidence: dict[str, Any] | None = None,
                          summary: str = "") -> str:
        """What the monitor does on a new violation: ``inv.violated``, then ``ticket.opened``."""
        now = utcnow()
        evidence = evidence or {}
        summary = summary or f"{invariant} on {entity}"
        await self.bus.publish(self.bus.event(InvariantViolated(invariant=invariant, entity=entity,
                                                                evidence=evidence, first_seen=now,
                                                                summary=summary), run=self.run))
        ticket_id = new_ticket_id()
        ticket = Ticket.open(TicketOpened(ticket_id=ticket_id, invariant=invariant, entity=entity,
                                          subject="ratelimiter", summary=summary, evidence=evidence,
                                          first_seen=now), run=self.run)
        await self.store.save(ticket)
        return ticket_id

    async def clear(self, invariant: str, entity: str) -> None:
        violated = next((e for e in reversed(self.log.of_type("inv.violated"))
                         if (e.data.invariant, e.data.entity) == (invariant, entity)), None)
        first_seen = violated.data.first_seen if violated is not None else utcnow()
        cleared = InvariantCleared(invariant=invariant, entity=entity, first_seen=first_seen,
                                   violated_for_s=(utcnow() - first_seen).total_seconds())
        await self.bus.publish(self.bus.event(cleared, run=self.run))

    async def finished(self, ticket_id: str, timeout: float = 20.0) -> Any:
        return await self.log.wait_for(lambda e: e.type == "agent.session_finished"
                                       and e.data.ticket_id == ticket_id, timeout, f"session end of {ticket_id}")

    def of(self, type_name: str, ticket_id: str | None = None) -> list[Any]:
        return [e for e in self.log.of_type(type_name) if ticket_id is None
                or getattr(e.data, "ticket_id", None) == ticket_id]

    async def close(self) -> None:
        for agent in self.agents:
            await agent.stop()
        for monitor, bus, task in self.services:
            await monitor.stop()
            monitor.stopping.set()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
            await monitor.stop_feeds()
            await bus.close()
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 15)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def lab(bus: Bus, bus_settings: BusSettings, run_id: str, agent_cluster: Cluster) -> AsyncIterator[AgentLab]:
    from events.subjects import run_events

    log = RunLog()
    replay = await bus.replay(run_events(run_id), log.handle, follow=True)
    lab = AgentLab(bus, bus_settings, run_id, agent_cluster, log)
    try:
        yield lab
    finally:
        await lab.close()
        await replay.stop()


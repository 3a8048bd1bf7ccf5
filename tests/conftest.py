"""Session fixtures: real nats-server (JetStream) and valkey on free ports.

Nothing here is mocked. Each test that needs a clean slate uses its own run id,
so tests share the servers without seeing each other's events.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from events import new_run_id
from events.bus import Bus
from events.settings import BusSettings
from oplab.infra import RunningServer, start_nats
from tests.servers import EmbeddedValkey, start_valkey


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    server = start_valkey(tmp_path_factory.mktemp("valkey"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bus_settings(nats_server: RunningServer) -> BusSettings:
    return BusSettings(nats_url=nats_server.url)


@pytest.fixture(scope="session")
async def bus(bus_settings: BusSettings) -> AsyncIterator[Bus]:
    b = await Bus.connect(bus_settings, source="tests")
    yield b
    await b.close()


@pytest.fixture
def run_id() -> str:
    return new_run_id()


@pytest.fixture
async def redis_client(valkey_server: EmbeddedValkey) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(valkey_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def lab_env(nats_server: RunningServer, valkey_server: EmbeddedValkey, tmp_path: Path) -> dict[str, str]:
    """Environment for child processes (services) pointed at the test servers."""
    env = dict(os.environ)
    env.update(
        NATS_URL=nats_server.url,
        REDIS_URL=valkey_server.url,
        OPLAB_HOME=str(tmp_path / "oplab"),
    )
    return env

"""End-to-end fixtures: the real stack (supervisord, nodes, services) on the test servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from events import Event
from events.bus import Bus
from oplab.crashes import brisk_scenario  # noqa: F401 - re-exported for the tests
from oplab.infra import RunningServer
from oplab.run_log import RunLog, follow_run  # noqa: F401 - re-exported for the tests
from oplab.settings import LabSettings
from oplab.stack import Stack
from tests.servers import EmbeddedValkey


@pytest.fixture
def lab_settings(tmp_path: Path, nats_server: RunningServer, valkey_server: EmbeddedValkey,
                 monkeypatch: pytest.MonkeyPatch) -> LabSettings:
    """The lab on the test NATS; its rate limiter on the test valkey (its provisioner reads REDIS_URL)."""
    monkeypatch.setenv("REDIS_URL", valkey_server.url)
    return LabSettings(home=tmp_path / "oplab", nats_url=nats_server.url)


@pytest.fixture
def stack(lab_settings: LabSettings) -> Iterator[Stack]:
    s = Stack(lab_settings)
    yield s
    s.down()


async def run_log(bus: Bus, run: str) -> list[Event]:
    """Every stored event of ``run``, in order (the run is over: no following)."""
    return [event for _, event in await bus.run_history(run)]

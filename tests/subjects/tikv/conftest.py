"""Fixtures for TiKV: the PD double and three store doubles (real processes under supervisord).

``double`` is shared by the package's tests, which must each leave it healthy (faults reverted
in ``finally``, every store Up): starting one costs ~2 s. Tests that make a store go ``Down``
(its peers removed) use their own, ``fresh_double``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from events.waiting import wait_until
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.settings import TiKVSettings
from tests.fakes.tikv import TiKVDouble, running_double

T = TypeVar("T")


def settings_for(double: TiKVDouble, **overrides: object) -> TiKVSettings:
    env = double.env()
    return TiKVSettings(pd_url=env["OPLAB_TIKV_PD_URL"], pd_endpoints=env["OPLAB_TIKV_PD_ENDPOINTS"],
                        control="supervisor", supervisor_url=env["OPLAB_TIKV_SUPERVISOR_URL"],
                        targets=env["OPLAB_TIKV_TARGETS"], **overrides)  # type: ignore[arg-type]


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll the double's processes (every 0.1 s) until ``check`` answers something truthy (returned);
    WaitTimeout, naming ``what`` and the last answer, after ``timeout`` seconds."""
    return await wait_until(check, timeout=timeout, interval=0.1, what=what)  # type: ignore[return-value]


async def all_up(cluster: TiKVCluster) -> bool:
    stores = await cluster.stores()
    probes = [await cluster.probe(s.store.status_address) for s in stores.values()]
    return len(stores) == 3 and all(s.store.state_name == "Up" for s in stores.values()) and all(p.ok for p in probes)


@pytest.fixture(scope="package")
async def double(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TiKVDouble]:
    async with running_double(tmp_path_factory.mktemp("tikv")) as d:
        yield d


@pytest.fixture
async def fresh_double(tmp_path: Path) -> AsyncIterator[TiKVDouble]:
    async with running_double(tmp_path / "tikv") as d:
        yield d


@pytest.fixture
async def cluster(double: TiKVDouble) -> AsyncIterator[TiKVCluster]:
    c = TiKVCluster(settings_for(double))
    try:
        yield c
    finally:
        try:
            for store in double.stores:  # leave the shared double healthy for the next test
                await c.control.unpause(store.program)
                await c.control.reconnect(store.program)
                await c.control.start(store.program)
            await eventually(lambda: all_up(c), 15, "every store up again")
        finally:
            await c.close()

"""A service's life: the ready file exists exactly while it is ready (what a container healthcheck tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from events.settings import BusSettings
from events.waiting import wait_until
from services.runtime import ServiceProcess, ServiceSettings
from services.runtime.lifecycle import serve


class Brief(ServiceProcess):
    name = "brief"
    done = asyncio.Event()

    async def main(self) -> None:
        self.ready.set()
        await type(self).done.wait()


async def test_the_ready_file_exists_while_the_service_is_ready(bus_settings: BusSettings, run_id: str,
                                                                  tmp_path: Path) -> None:
    ready_file = tmp_path / "ready"
    ready_file.write_text("left by a crashed predecessor\n")
    Brief.done = asyncio.Event()
    settings = ServiceSettings(run=run_id, instance="t", ready_file=ready_file)
    serving = asyncio.create_task(serve(Brief, settings, bus_settings))
    await wait_until(lambda: ready_file.exists() and ready_file.read_text().strip().isdigit(), timeout=10,
                     interval=0.02, what="the ready file written")  # another task writes it: no event to wait on
    Brief.done.set()
    assert await asyncio.wait_for(serving, 10) == 0
    assert not ready_file.exists()

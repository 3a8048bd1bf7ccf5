"""A TiKV cluster double: the PD double and three store doubles, as real processes under supervisord.

See :mod:`tests.fakes.tikv.pd` and :mod:`tests.fakes.tikv.store` for what each double covers and
what it does not. :func:`running_double` starts one on free ports of 127.0.0.1 and yields
:class:`TiKVDouble`: the PD double's HTTP URL and gRPC endpoint, and supervisord's XML-RPC URL,
through which the lab's process-level stand-in for the Docker faults acts on the store processes
(program ``store-N`` is the store with id N).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from events.waiting import wait_until
from oplab.infra import free_port
from oplab.supervisor import Program, Supervisor, SupervisorError, render_config, supervisord_binary

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class StoreProcess:
    id: int
    program: str
    address: str
    status_address: str


@dataclass
class TiKVDouble:
    pd_url: str
    pd_grpc: str
    supervisor_url: str
    stores: list[StoreProcess]
    home: Path

    @property
    def supervisor(self) -> Supervisor:
        return Supervisor(self.supervisor_url)

    def env(self) -> dict[str, str]:
        """What the lab's processes need to treat this double as their TiKV (the subject's settings)."""
        return {
            "OPLAB_TIKV_PD_URL": self.pd_url,
            "OPLAB_TIKV_PD_ENDPOINTS": self.pd_grpc,
            "OPLAB_TIKV_CONTROL": "supervisor",
            "OPLAB_TIKV_SUPERVISOR_URL": self.supervisor_url + "/RPC2",
            "OPLAB_TIKV_TARGETS": ",".join(f"{s.program}={s.address}" for s in self.stores),
        }

    def stores_doc(self) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.pd_url}/pd/api/v1/stores", timeout=2) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]


def _ready(double: TiKVDouble) -> bool:
    try:
        doc = double.stores_doc()
        with urllib.request.urlopen(f"{double.pd_url}/pd/api/v1/regions", timeout=2) as resp:
            regions = json.loads(resp.read())["regions"]
    except OSError:
        return False
    up = [s for s in doc["stores"] if s["store"]["state_name"] == "Up"]  # type: ignore[index]
    return len(up) == len(double.stores) and all("leader" in r for r in regions)


@asynccontextmanager
async def running_double(home: Path, stores: int = 3, *, disconnect_after_s: float = 1.0,
                         max_store_down_time_s: float = 3.0) -> AsyncIterator[TiKVDouble]:
    """The PD double and ``stores`` store doubles, healthy (every store Up, every region led) on entry."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    http, grpc_port = free_port(), free_port()
    pd_url = f"http://127.0.0.1:{http}"
    url = f"http://lab:{secrets.token_urlsafe(8)}@127.0.0.1:{free_port()}"
    py = sys.executable
    programs = [Program("pd", [py, "-m", "tests.fakes.tikv.pd", "--http-port", str(http), "--grpc-port",
                               str(grpc_port), "--disconnect-after-s", str(disconnect_after_s),
                               "--max-store-down-time-s", str(max_store_down_time_s)],
                        priority=10, autorestart="true")]
    processes = []
    for i in range(1, stores + 1):
        g, s = free_port(), free_port()
        processes.append(StoreProcess(i, f"store-{i}", f"127.0.0.1:{g}", f"127.0.0.1:{s}"))
        programs.append(Program(f"store-{i}", [py, "-m", "tests.fakes.tikv.store", "--id", str(i), "--pd", pd_url,
                                               "--grpc-port", str(g), "--status-port", str(s)],
                                priority=20, autorestart="false", stopwaitsecs=5))
    conf = home / "supervisord.conf"
    conf.write_text(render_config(home, url, programs).replace(f"directory={Path.cwd()}", f"directory={REPO}"))
    await asyncio.to_thread(subprocess.run, [supervisord_binary(), "-c", str(conf)], check=True)
    double = TiKVDouble(pd_url, f"127.0.0.1:{grpc_port}", url, processes, home)
    sup = double.supervisor
    try:
        await _until(sup.alive, 10, "supervisord up")
        await asyncio.to_thread(sup.start, "pd")
        for p in processes:
            await asyncio.to_thread(sup.start, p.program)
        await _until(lambda: _ready(double), 20, "every store Up and every region led")
        yield double
    finally:
        with contextlib.suppress(SupervisorError):
            await asyncio.to_thread(sup.shutdown)
        pid_file = home / "supervisord.pid"
        await _until(lambda: not pid_file.exists(), 20, "supervisord down")


async def _until(check: Callable[[], object], timeout: float, what: str) -> None:
    """Poll other processes' readiness (a blocking ``check``, run in a thread) every 0.05 s."""
    await wait_until(lambda: asyncio.to_thread(check), timeout=timeout, interval=0.05, what=what)

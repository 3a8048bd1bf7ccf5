"""The TiKV cluster as the lab reaches it: PD's HTTP API, each store's status port, and the
processes (through Docker or supervisord). Tools, faults and the observer act through one
:class:`TiKVCluster`; each role builds its own.

Names: a store is known by its node name, the target it maps to in ``targets``
(``store-1=127.0.0.1:20161``), else its address's host (``tikv1:20160`` → ``tikv1``,
its compose service); a PD member by its member name. Those names are the lab's
targets: nothing else may be touched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

from events.waiting import WaitTimeout, wait_until
from subjects.contract import RefusedError, SubjectError
from subjects.tikv.control import ProcessControl, make_control
from subjects.tikv.pd import PDClient, PDUnavailable, StoreInfo
from subjects.tikv.settings import TiKVSettings


@dataclass(frozen=True)
class StatusProbe:
    """One ``GET /status`` on a store's status port: ``ok`` iff it answered 200."""

    ok: bool
    detail: str
    latency_ms: float


class TiKVCluster:
    def __init__(self, settings: TiKVSettings | None = None) -> None:
        self.settings = settings if settings is not None else TiKVSettings()
        self.pd = PDClient(self.settings.pd_url, self.settings.http_timeout_s)
        self._control: ProcessControl | None = None
        self._http: aiohttp.ClientSession | None = None
        self.known_stores: dict[str, int] = {}  # node name -> store id, as last seen in PD
        self.known_members: list[str] = []  # PD member names, as last seen

    @property
    def control(self) -> ProcessControl:
        if self._control is None:
            self._control = make_control(self.settings)
        return self._control

    async def close(self) -> None:
        await self.pd.close()
        if self._http is not None and not self._http.closed:
            await self._http.close()
        self._http = None
        if self._control is not None:
            await self._control.close()

    # -- names ----------------------------------------------------------------------------

    def store_name(self, address: str) -> str:
        for name, target in self.settings.named_targets.items():
            if target == address:
                return name
        return address.rsplit(":", 1)[0] or address

    async def stores(self, *, include_tombstones: bool = False) -> dict[str, StoreInfo]:
        """PD's stores by node name (Tombstones only when asked)."""
        found = await self.pd.stores(include_tombstones=include_tombstones)
        out = {self.store_name(s.store.address): s for s in found.stores}
        self.known_stores.update({name: s.store.id for name, s in out.items()})
        return out

    def targets(self) -> list[str]:
        """Stores and PD members the lab may act on (configured, or as last seen in PD)."""
        names = list(self.settings.named_targets) or sorted(self.known_stores)
        return [*names, *(m for m in self.known_members if m not in names)]

    async def refresh_targets(self) -> list[str]:
        """Ask PD for the stores and members (best effort: what is known stays on failure)."""
        try:
            await self.stores()
            members = await self.pd.members()
            self.known_members = [m.name for m in members.members]
        except PDUnavailable:
            pass
        return self.targets()

    async def require_store(self, name: str) -> tuple[str, StoreInfo]:
        """``name`` and PD's record of it, if it is one of the cluster's stores; else RefusedError."""
        stores = await self.stores(include_tombstones=True)
        if name not in stores:
            known = ", ".join(sorted(stores)) or "none"
            raise RefusedError(f"unknown store {name!r}: not part of the cluster (stores: {known})")
        return name, stores[name]

    async def require_member(self, name: str) -> str:
        members = await self.pd.members()
        self.known_members = [m.name for m in members.members]
        if name not in self.known_members:
            known = ", ".join(self.known_members) or "none"
            raise RefusedError(f"unknown PD member {name!r}: not part of the cluster (members: {known})")
        return name

    def require_target(self, name: str) -> str:
        """``name`` if it is a known store or PD member (as last refreshed); else RefusedError."""
        if name not in self.targets():
            known = ", ".join(self.targets()) or "none known yet"
            raise RefusedError(f"unknown target {name!r}: not part of the cluster (targets: {known})")
        return name

    # -- status ports ----------------------------------------------------------------------------

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        return self._http

    async def probe(self, status_address: str) -> StatusProbe:
        """``GET /status`` on a store's status port; never raises."""
        start = time.perf_counter()
        if not status_address:
            return StatusProbe(False, "no status address known", 0.0)
        try:
            timeout = aiohttp.ClientTimeout(total=self.settings.probe_timeout_s)
            async with self.http().get(f"http://{status_address}/status", timeout=timeout) as resp:
                await resp.read()
                ok = resp.status == 200
                detail = "ok" if ok else f"HTTP {resp.status}"
        except TimeoutError:
            ok, detail = False, f"timed out after {self.settings.probe_timeout_s:g}s"
        except aiohttp.ClientConnectorError as exc:
            ok, detail = False, f"cannot connect: {exc.strerror or exc}"
        except (aiohttp.ClientError, OSError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        return StatusProbe(ok, detail, (time.perf_counter() - start) * 1000)

    async def wait_store_up(self, name: str, deadline_s: float) -> str:
        """Poll (every 0.2 s) until PD reads ``name`` Up and its status port answers; SubjectError,
        with what the last look saw, on the deadline."""
        last = "not checked"

        async def up() -> str | None:
            nonlocal last
            try:
                stores = await self.stores()
            except PDUnavailable as exc:
                last = str(exc)
                return None
            info = stores.get(name)
            if info is None:
                last = "PD does not list it"
                return None
            probe = await self.probe(info.store.status_address)
            if info.store.state_name == "Up" and probe.ok:
                return f"{name} is Up in PD and its status port answers"
            last = f"PD state {info.store.state_name}, status port {probe.detail}"
            return None

        try:
            return await wait_until(up, timeout=deadline_s, interval=0.2, what=f"{name} up")
        except WaitTimeout:
            raise SubjectError(f"{name} not up within {deadline_s:g}s: {last}") from None

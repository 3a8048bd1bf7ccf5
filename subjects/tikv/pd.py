"""PD's HTTP API, as the lab reads and calls it (``/pd/api/v1``).

The response models follow tikv/pd's ``pkg/response`` (``StoresInfo``, ``StoreInfo``
with ``MetaStore`` and ``StoreStatus``; ``RegionsInfo``) and ``pdpb.GetMembersResponse``,
keeping only the fields the lab uses and ignoring the rest (PD adds fields across
versions). Byte sizes arrive as strings (``"9.313GiB"``), durations as Go durations
(``"1h2m3s"``), timestamps as RFC 3339. Every call is bounded by ``timeout_s``;
a failure is :class:`PDUnavailable` with the reason (never a hang, never a traceback).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from subjects.contract import SubjectError

_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGTP]?i?B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4, "pib": 1024**5,
          "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4, "pb": 1000**5}


def parse_size(text: str | int | None) -> int | None:
    """``"9.313GiB"`` → bytes (None if absent or unreadable)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text or "")
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS.get((match.group(2) or "B").lower(), 1))


class PDUnavailable(SubjectError):
    """PD did not answer usefully (unreachable, timed out, an error status, a body that is not PD's)."""


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MetaStore(_Loose):
    id: int
    address: str = ""
    status_address: str = ""
    version: str = ""
    state_name: str = "Up"
    start_timestamp: int | None = None


class StoreStatus(_Loose):
    capacity: str | None = None
    available: str | None = None
    leader_count: int = 0
    region_count: int = 0
    pending_peer_count: int = 0
    last_heartbeat_ts: datetime | None = None
    uptime: str | None = None


class StoreInfo(_Loose):
    store: MetaStore
    status: StoreStatus = StoreStatus()


class StoresInfo(_Loose):
    count: int = 0
    stores: list[StoreInfo] = []


class Member(_Loose):
    name: str = ""
    member_id: int = 0
    client_urls: list[str] = []
    peer_urls: list[str] = []


class Members(_Loose):
    members: list[Member] = []
    leader: Member | None = None


class Health(_Loose):
    name: str = ""
    member_id: int = 0
    health: bool = False


class RegionPeer(_Loose):
    id: int = 0
    store_id: int = 0


class RegionInfo(_Loose):
    id: int
    start_key: str = ""
    end_key: str = ""
    peers: list[RegionPeer] = []
    leader: RegionPeer | None = None
    down_peers: list[dict[str, Any]] = []
    pending_peers: list[RegionPeer] = []


class RegionsInfo(_Loose):
    count: int = 0
    regions: list[RegionInfo] = []


class PDClient:
    """One aiohttp session to PD's HTTP API (created on first use, in the running loop)."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.base = base_url.rstrip("/") + "/pd/api/v1"
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base}{path}"
        try:
            async with self.session().request(method, url, **kwargs) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise PDUnavailable(f"PD {method} {path}: HTTP {resp.status}: {text[:200].strip()}")
                try:
                    return await resp.json(content_type=None) if text else None
                except ValueError as exc:
                    raise PDUnavailable(f"PD {method} {path}: not JSON: {text[:80]!r}") from exc
        except TimeoutError as exc:
            raise PDUnavailable(f"PD {method} {path}: timed out after {self.timeout_s:g}s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise PDUnavailable(f"PD {method} {path}: {type(exc).__name__}: {exc}") from exc

    async def _model(self, model: type[BaseModel], path: str, **kwargs: Any) -> Any:
        doc = await self._request("GET", path, **kwargs)
        try:
            return model.model_validate(doc)
        except ValidationError as exc:
            raise PDUnavailable(f"PD GET {path}: not PD's answer: {exc.errors()[0]['msg']}") from exc

    async def stores(self, *, include_tombstones: bool = False) -> StoresInfo:
        params = [("state", "0"), ("state", "1"), ("state", "2")] if include_tombstones else None
        return await self._model(StoresInfo, "/stores", params=params)  # type: ignore[no-any-return]

    async def members(self) -> Members:
        return await self._model(Members, "/members")  # type: ignore[no-any-return]

    async def health(self) -> list[Health]:
        doc = await self._request("GET", "/health")
        try:
            return [Health.model_validate(h) for h in doc]
        except (TypeError, ValidationError) as exc:
            raise PDUnavailable("PD GET /health: not PD's answer") from exc

    async def regions(self) -> RegionsInfo:
        return await self._model(RegionsInfo, "/regions")  # type: ignore[no-any-return]

    async def region_check(self, kind: str) -> RegionsInfo:
        """``miss-peer``, ``down-peer`` or ``pending-peer`` regions."""
        return await self._model(RegionsInfo, f"/regions/check/{kind}")  # type: ignore[no-any-return]

    async def set_store_state(self, store_id: int, state: str) -> str:
        return str(await self._request("POST", f"/store/{store_id}/state", params={"state": state}))

    async def transfer_leader(self, member: str) -> str:
        return str(await self._request("POST", f"/leader/transfer/{member}"))

    async def remove_tombstones(self) -> str:
        return str(await self._request("DELETE", "/stores/remove-tombstone"))

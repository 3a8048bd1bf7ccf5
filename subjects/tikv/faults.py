"""Real faults for TiKV, through the cluster's process control (Docker, or supervisord for local stores).

- ``store_kill``: SIGKILL a store's process. Undo ``{"target"}``: start it.
- ``store_pause``: freeze a store (``docker pause`` / SIGSTOP): it stops heartbeating and
  answering. Undo: unpause.
- ``store_partition``: disconnect a store from the cluster's network (it keeps running,
  cut off). Undo: reconnect.
- ``pd_leader_kill``: SIGKILL the PD leader's process; needs a PD of three members (the
  others elect a new leader), refused otherwise. Undo: start it.
- ``hot_read_burst``: a legitimate burst of reads of one key, far over the workload's
  rate, for a bounded time, from the injecting process: nothing breaks (the control
  case), so nothing may be "fixed". Undo: stop it.

Every undo is idempotent and derivable from the target alone (``undo_for_target``), so a
chaos service that died mid-injection repairs what it left. Targets are the cluster's
stores and PD members (by name: see :mod:`subjects.tikv.cluster`) and ``kv`` for the
burst; anything else is refused before anything is done. Proof of effect is observed,
never assumed: the store's status port stops answering, PD elects another leader, the
burst's reads are served.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import tikv
from pydantic import BaseModel, Field

from subjects.bursts import Burst, BurstFault
from subjects.contract import Arguments, RefusedError, SubjectError
from subjects.contract.fault_kit import Fault, Injection, Reverted
from subjects.tikv.cluster import TiKVCluster
from subjects.tikv.pd import PDUnavailable

KV_TARGET = "kv"


class TiKVFault(Fault):
    """A TiKV fault: holds the cluster it acts through. ``target_kind``: ``store`` (default: the first
    store that is up), ``pd`` (the leader) or ``kv``."""

    target_kind: str = "store"

    def __init__(self, cluster: TiKVCluster) -> None:
        self.cluster = cluster

    async def resolve_target(self, target: str | None) -> str:
        if self.target_kind == "kv":
            if target not in (None, KV_TARGET):
                raise RefusedError(f"unknown target {target!r}: this fault targets the key space, named {KV_TARGET!r}")
            return KV_TARGET
        try:
            if self.target_kind == "pd":
                return await self._pd_leader(target)
            if target is not None:
                name, _ = await self.cluster.require_store(target)
                return name
            return await self._first_up_store()
        except PDUnavailable as exc:
            raise SubjectError(f"{self.kind}: cannot resolve the target: {exc}") from exc

    async def _first_up_store(self) -> str:
        for name, info in (await self.cluster.stores()).items():
            if info.store.state_name == "Up" and (await self.cluster.probe(info.store.status_address)).ok:
                return name
        raise RefusedError("no store is up to target")

    async def _pd_leader(self, target: str | None) -> str:
        members = await self.cluster.pd.members()
        if len(members.members) < 3:
            raise RefusedError(f"{self.kind} needs a PD of 3 members (this one has {len(members.members)}): killing "
                               "the only leader would stop the cluster, not test its failover")
        leader = members.leader.name if members.leader else None
        if leader is None:
            raise RefusedError("PD has no leader now: nothing to kill")
        if target is not None and target != leader:
            raise RefusedError(f"{target!r} is not PD's leader (the leader is {leader})")
        return leader

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return {"target": target}

    async def _status_address(self, name: str) -> str:
        stores = await self.cluster.stores()
        return stores[name].store.status_address if name in stores else ""


class _ProcessFault(TiKVFault):
    """A fault that is one verb of the cluster's process control (``verb``) on the target's process;
    the undo names the target (its revert needs no more)."""

    verb: ClassVar[Literal["kill", "pause"]]

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        # resolved first: the process control is made on first use, and a refused target must be
        # refused before that can fail
        name = await self.resolve_target(target)
        await self.cluster.control.act(self.verb, name)
        return Injection(target=name, undo={"target": name})


class _KillFault(_ProcessFault):
    """SIGKILL the target's process; revert: start it (one already running, restarted by someone,
    needed nothing)."""

    verb = "kill"

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        name = str(undo.get("target", ""))
        running = await self.cluster.control.state(name) in ("running", "disconnected")
        return Reverted(await self.cluster.control.start(name), changed=not running)


class StoreKill(_KillFault):
    kind = "store_kill"
    detected_by = "store_not_up"
    description = "SIGKILL one TiKV store's process; it stays down until started again"

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        probe = await self.cluster.probe(await self._status_address(injection.target))
        if probe.ok:
            return None
        return {"store": injection.target, "status_port": probe.detail,
                "process": await self.cluster.control.state(injection.target)}


class StorePause(_ProcessFault):
    kind = "store_pause"
    detected_by = "store_not_up"
    description = "freeze one TiKV store's process: it stops heartbeating and answering, yet still exists"
    verb = "pause"

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        state = await self.cluster.control.state(injection.target)
        probe = await self.cluster.probe(await self._status_address(injection.target))
        return None if state != "paused" or probe.ok else {"store": injection.target, "process": state,
                                                            "status_port": probe.detail}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        name = str(undo.get("target", ""))
        paused = await self.cluster.control.state(name) == "paused"
        return Reverted(await self.cluster.control.unpause(name), changed=paused)


class StorePartition(TiKVFault):
    kind = "store_partition"
    detected_by = "store_not_up"
    description = "cut one TiKV store off the cluster's network; it keeps running, unreachable"

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        name = await self.resolve_target(target)
        address = await self._status_address(name)
        await self.cluster.control.disconnect(name)
        return Injection(target=name, undo={"target": name, "status_address": address})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        probe = await self.cluster.probe(str(injection.undo.get("status_address", "")))
        state = await self.cluster.control.state(injection.target)
        if probe.ok or state in ("exited", "missing"):
            return None
        return {"store": injection.target, "process": state, "status_port": probe.detail}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        name = str(undo.get("target", ""))
        # cut off means unreachable from here, whatever the control can tell of the network
        reachable = (await self.cluster.probe(str(undo.get("status_address", "")))).ok
        return Reverted(await self.cluster.control.reconnect(name), changed=not reachable)


class PDLeaderKill(_KillFault):
    kind = "pd_leader_kill"
    detected_by = "pd_member_down"
    target_kind = "pd"
    description = "SIGKILL the PD leader's process (a PD of three members elects another)"

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        state = await self.cluster.control.state(injection.target)
        if state == "running":
            return None
        try:
            leader = (await self.cluster.pd.members()).leader
        except PDUnavailable as exc:
            leader, error = None, str(exc)
        else:
            error = None
        return {"member": injection.target, "process": state, "new_leader": leader.name if leader else None,
                **({"pd_error": error} if error else {})}


class BurstParams(Arguments):
    rate: float = Field(default=300.0, gt=0, le=2000, description="reads per second")
    duration_s: float = Field(default=120.0, gt=0, le=900, description="the burst stops by itself after this")


class HotReadBurst(BurstFault["ReadBurst"], TiKVFault):
    """The control case: legitimate reads of one hot key, far over the workload's rate, for a bounded time.
    Runs as a task of the injecting process (the chaos service): see :mod:`subjects.bursts`."""

    kind = "hot_read_burst"
    target_kind = "kv"
    description = "a legitimate burst of reads of one hot key (nothing is broken: the control case)"
    params_model = BurstParams

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        p = params if isinstance(params, BurstParams) else BurstParams.model_validate(params.model_dump())
        await self.resolve_target(target)
        burst = ReadBurst(self.cluster, p.rate, p.duration_s)
        await burst.prepare()
        return self.launch(burst, KV_TARGET)


class ReadBurst(Burst):
    """Paced reads of one key through a real KV client, until stopped or ``duration_s``. Proof: 20 of
    them were served."""

    KEY = b"oplab-hot-key"

    def __init__(self, cluster: TiKVCluster, rate: float, duration_s: float) -> None:
        super().__init__("burst", rate, duration_s)
        self.settings = cluster.settings
        self.sent = self.ok = self.errors = 0
        self._client: tikv.AsyncRawClient | None = None

    async def prepare(self) -> None:
        self._client = tikv.AsyncRawClient(self.settings.endpoints, timeout=self.settings.kv_timeout_s)
        try:
            await self._client.put(self.KEY, b"hot")
        except tikv.TiKVError as exc:
            await self._client.close()
            raise SubjectError(f"hot_read_burst: cannot write its key: {exc}") from exc

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def proven(self) -> bool:
        return self.ok >= 20

    def summary(self) -> dict[str, Any]:
        return {"key": self.KEY.decode(), "rate_per_s": self.rate, **self.timing(), "sent": self.sent, "ok": self.ok,
                "errors": self.errors}

    def tally(self) -> str:
        return f"{self.sent} reads, {self.ok} ok, {self.errors} errors"

    async def run(self) -> None:
        assert self._client is not None
        while await self.turn():  # one read at a time: the reads a slow one held up are skipped, not sent at once
            self.sent += 1
            try:
                await self._client.get(self.KEY)
                self.ok += 1
            except tikv.TiKVError:
                self.errors += 1


FAULT_TYPES: tuple[type[TiKVFault], ...] = (StoreKill, StorePause, StorePartition, PDLeaderKill, HotReadBurst)
"""The catalogue, in the order ``oplab subjects`` shows it."""


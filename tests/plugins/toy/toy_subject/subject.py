"""The toy subject: every role Operator Lab asks of a subject, for a lamp.

| role | here |
|---|---|
| observer | ``GET /state``: node ``lamp``, ``up`` (lit) or ``degraded`` (``dark``); ``down`` if silent |
| invariant | ``lamp_dark``: the lamp reads dark in 2 snapshots spanning 0.4 s (named for what is seen) |
| fault kit | ``cut_power``: ``PUT /state {"lit": false}``; undo: switch it back on |
| toolbox | ``switch_on`` (mutating) and its playbook for ``lamp_dark`` |
| workload | reads the lamp, 20 a second: operation ``read``, ``ok`` when it answers lit |
| provisioner | one local process, ``python -m toy_subject.lamp``, healthy when ``/state`` answers |
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import NodeStats, NodeView, ObsSnapshot, OperationStats, WorkloadStats
from subjects.contract import (
    Deployment,
    HealthCheck,
    Invariant,
    ListedToolbox,
    LocalProcess,
    Observer,
    Playbook,
    Provisioner,
    Roles,
    Site,
    StatsSink,
    Subject,
    SubjectError,
    Tool,
    ToolCall,
    Violation,
    Workload,
)
from subjects.contract.fault_kit import Fault, FaultKit, Injection, Reverted
from subjects.judging import ObserverBlind, SnapshotCondition, iso

LAMP = "lamp"


class ToySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_TOY_", extra="ignore")
    lamp_url: str = "http://127.0.0.1:8190"


async def read_lamp(url: str) -> bool:
    """Whether the lamp is lit; SubjectError if it does not answer."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as http, \
                http.get(f"{url}/state") as resp:
            return bool((await resp.json())["lit"])
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
        raise SubjectError(f"the lamp at {url} does not answer: {exc!r}") from exc


async def set_lamp(url: str, lit: bool) -> bool:
    """Switch the lamp; returns whether it was lit before."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as http, \
                http.put(f"{url}/state", json={"lit": lit}) as resp:
            return bool((await resp.json())["previous"])
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
        raise SubjectError(f"the lamp at {url} does not answer: {exc!r}") from exc


# -- observer -------------------------------------------------------------------------


class LampDark(SnapshotCondition[NodeView]):
    name = "lamp_dark"
    description = "the lamp is lit"
    grace_s = 0.4

    def condition(self, snap: ObsSnapshot) -> NodeView | None:
        node = snap.node(LAMP)
        return node if node is not None and node.state == "dark" else None

    def violation(self, run: list[tuple[ObsSnapshot, NodeView]], seconds: float) -> Violation:
        evidence = {"since": iso(run[0][0].observed_at), "dark_for_s": round(seconds, 3)}
        return Violation(self.name, LAMP, f"the lamp has been dark for {seconds:.1f}s", evidence)


class ToyObserver(Observer):
    def __init__(self) -> None:
        self.url = ToySettings().lamp_url

    async def observe(self) -> ObsSnapshot:
        now = datetime.now(UTC)
        try:
            lit = await read_lamp(self.url)
        except SubjectError as exc:
            node = NodeView(node=LAMP, status="down", state="unreachable", address=self.url, detail=str(exc))
            return ObsSnapshot(subject=ToySubject.name, ok=True, observed_at=now, nodes=[node])
        node = NodeView(node=LAMP, status="up" if lit else "degraded", state="lit" if lit else "dark",
                        address=self.url, last_seen=now)
        return ObsSnapshot(subject=ToySubject.name, ok=True, observed_at=now, nodes=[node])

    def invariants(self) -> list[Invariant]:
        return [LampDark(), ObserverBlind()]


# -- toolbox --------------------------------------------------------------------------


class SwitchOn(Tool):
    name = "switch_on"
    description = "Switch the lamp on. Mutating."
    mutating = True

    def __init__(self, url: str) -> None:
        self.url = url

    async def run(self, args: BaseModel) -> Any:
        return {"was_lit": await set_lamp(self.url, True), "lit": await read_lamp(self.url)}


def _playbook() -> Playbook:
    return Playbook("lamp_dark", diagnose=lambda evidence: [],
                    hypothesis=lambda evidence, findings: "the lamp is dark: switching it on should light it",
                    remedy=lambda evidence, findings: [ToolCall("switch_on")])


class ToyToolbox(ListedToolbox):
    description = "A lamp, served by one HTTP process. Healthy means: the lamp is lit."

    def __init__(self) -> None:
        super().__init__([SwitchOn(ToySettings().lamp_url)], [_playbook()])


# -- fault kit ------------------------------------------------------------------------


class CutPower(Fault):
    kind = "cut_power"
    description = "switch the lamp off"
    default_ttl_s = 60.0

    def __init__(self, url: str) -> None:
        self.url = url

    async def resolve_target(self, target: str | None) -> str:
        return LAMP

    async def inject(self, target: str | None, params: BaseModel) -> Injection:
        await set_lamp(self.url, False)
        return Injection(target=LAMP, undo={"lit": True})

    async def effective(self, injection: Injection, params: BaseModel) -> dict[str, Any] | None:
        return None if await read_lamp(self.url) else {"lit": False}

    async def revert(self, undo: dict[str, Any]) -> Reverted:
        was = await set_lamp(self.url, True)
        return Reverted("the lamp was already lit", changed=False) if was else Reverted("switched the lamp back on")

    def undo_for_target(self, target: str, params: BaseModel) -> dict[str, Any] | None:
        return {"lit": True}


class ToyFaultKit(FaultKit):
    def __init__(self) -> None:
        self._faults: list[Fault] = [CutPower(ToySettings().lamp_url)]

    def faults(self) -> list[Fault]:
        return list(self._faults)

    def targets(self) -> list[str]:
        return [LAMP]


# -- workload -------------------------------------------------------------------------


class ToyWorkload(Workload):
    """Reads the lamp 20 times a second; a read is ``ok`` if the lamp is lit, ``rejected`` if dark."""

    async def run(self, stop: asyncio.Event, on_stats: StatsSink, interval_s: float = 1.0) -> None:
        url = ToySettings().lamp_url
        while not stop.is_set():
            started, counts, latencies = time.monotonic(), {"ok": 0, "rejected": 0, "errors": 0}, []
            while not stop.is_set() and time.monotonic() - started < interval_s:
                t = time.monotonic()
                try:
                    counts["ok" if await read_lamp(url) else "rejected"] += 1
                    latencies.append((time.monotonic() - t) * 1000)
                except SubjectError:
                    counts["errors"] += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.05)  # pacing, interruptible by stop
            sent = sum(counts.values())
            p50 = sorted(latencies)[len(latencies) // 2] if latencies else None
            read = OperationStats(name="read", sent=sent, p50_ms=p50, **counts)
            await on_stats(WorkloadStats(
                interval_s=round(time.monotonic() - started, 3), operations=[read],
                nodes=[NodeStats(node=LAMP, **read.model_dump(exclude={"name"}))],
                ended_at=datetime.now(UTC)))


# -- provisioner ----------------------------------------------------------------------


class ToyProvisioner(Provisioner):
    def plan(self, site: Site) -> Deployment:
        port = site.free_port()
        url = f"http://127.0.0.1:{port}"
        lamp = LocalProcess(LAMP, [site.python, "-m", "toy_subject.lamp", "--port", str(port)],
                            health=HealthCheck(f"{url}/state"))
        return Deployment(env={"OPLAB_TOY_LAMP_URL": url}, processes=(lamp,), endpoints={LAMP: url})


# -- the subject ----------------------------------------------------------------------


class ToySubject(Subject):
    name = "toy"
    description = "A lamp that is lit or dark."
    roles = Roles(observer=ToyObserver, toolbox=ToyToolbox, fault_kit=ToyFaultKit, workload=ToyWorkload,
                  provisioner=ToyProvisioner)
    fault_types, invariant_types, tool_types = [CutPower], [LampDark, ObserverBlind], [SwitchOn]

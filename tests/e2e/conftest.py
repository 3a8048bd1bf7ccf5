"""End-to-end fixtures: the real stack (supervisord, nodes, services) on the test servers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from events import Event
from events.bus import Bus, Delivered
from events.subjects import run_events
from oplab.infra import RunningServer
from oplab.settings import LabSettings
from oplab.stack import Stack
from subjects.registry import load_subject


@pytest.fixture
def lab_settings(tmp_path: Path, nats_server: RunningServer, valkey_server: RunningServer,
                 monkeypatch: pytest.MonkeyPatch) -> LabSettings:
    """The lab on the test NATS; its rate limiter on the test valkey (its provisioner reads REDIS_URL)."""
    monkeypatch.setenv("REDIS_URL", valkey_server.url)
    return LabSettings(home=tmp_path / "oplab", nats_url=nats_server.url)


def brisk_scenario(subject: str, directory: Path) -> Path:
    """``subject``'s shipped scenario without its presentation pauses: no countdown, and chapters that
    only show something (no condition) for 0.2 s. Every condition, its deadline and the control run's
    watch window are the shipped ones, so a test waits only on what the run does. Returns the file."""
    doc = yaml.safe_load(next(iter(load_subject(subject).scenarios().values())).read_text())
    for chapter in doc["chapters"]:
        chapter.pop("countdown_s", None)
        advance = chapter.setdefault("advance", {})
        if "when" not in advance and chapter.get("plays_for") != "control":
            advance["timeout_s"] = 0.2
    path = directory / f"{subject}-brisk.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def stack(lab_settings: LabSettings) -> Iterator[Stack]:
    s = Stack(lab_settings)
    yield s
    s.down()


class RunLog:
    """Every event of one run, live, with waits on predicates (deadline, no sleeps)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, Event]] = []
        self._changed = asyncio.Condition()

    async def handle(self, d: Delivered) -> None:
        self.events.append((d.seq, d.event))
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float, what: str) -> Event:
        def found() -> Event | None:
            return next((e for _, e in self.events if predicate(e)), None)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
            except TimeoutError:
                seen = sorted({e.type for _, e in self.events})
                raise AssertionError(f"no {what} within {timeout}s; saw types {seen}") from None
        result = found()
        assert result is not None
        return result

    def of_type(self, type_name: str) -> list[Event]:
        return [e for _, e in self.events if e.type == type_name]


async def follow_run(bus: Bus, run: str) -> tuple[RunLog, object]:
    log = RunLog()
    replay = await bus.replay(run_events(run), log.handle, follow=True)
    return log, replay


async def run_log(bus: Bus, run: str) -> list[Event]:
    """Every stored event of ``run``, in order (the run is over: no following)."""
    events: list[Event] = []

    async def collect(d: Delivered) -> None:
        events.append(d.event)

    await bus.replay(run_events(run), collect)
    return events

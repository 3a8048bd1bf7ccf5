"""The director service: plays a scenario's chapters over the live log.

Modes (``OPLAB_DIRECTOR_MODE``): ``auto`` advances on each chapter's event
condition or timeout; ``interactive`` advances on the presenter's key
(``cmd.director.next``) or the event condition — never on a timer.

Commands: ``cmd.director.next``, ``cmd.director.status``. A restarted director
resumes at the chapter the log says it was in, without re-running that
chapter's entry actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import ChapterFinished, ChapterStarted, RunFinished, RunStarted, ServiceStarted
from events.bus import Delivered, Replay
from events.commands import CommandError, request
from events.subjects import command, run_events
from projections.timeline import RunTimeline
from services.director.scenario import Chapter, Finish, Inject, RevertAll, Scenario, load_scenario
from services.runtime import ServiceProcess

log = logging.getLogger(__name__)


class DirectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")
    director_mode: str = "auto"
    scenario: str = "ratelimiter"
    fault: str | None = None
    director_ready_timeout_s: float = 30.0


class DirectorService(ServiceProcess):
    name = "director"

    def __init__(self, bus, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(bus, settings)
        self.config = DirectorSettings()
        self.scenario: Scenario = load_scenario(self.config.scenario)
        self.fault = self.config.fault or self.scenario.default_fault
        if self.fault not in self.scenario.faults:
            raise SystemExit(f"director: fault {self.fault!r} is not in scenario {self.scenario.name} "
                             f"(choose from {', '.join(self.scenario.faults)})")
        self.chapters = self.scenario.chapters_for(self.fault)
        self.mode = self.config.director_mode
        self.timeline = RunTimeline()
        self.services_up: set[str] = set()
        self.run_started = False
        self.run_finished = False
        self.last_chapter: int | None = None
        self.fault_seq = 0
        self._chapter: Chapter | None = None
        self._chapter_seq = 0
        self._condition = asyncio.Event()
        self._key = asyncio.Event()
        self._ready = asyncio.Event()
        self._feed: Replay | None = None
        self._micro: Service | None = None

    # -- the log ----------------------------------------------------------------

    async def _on_event(self, d: Delivered) -> None:
        event, data = d.event, d.event.data
        self.timeline.apply(event)
        if isinstance(data, ServiceStarted):
            self.services_up.add(data.service)
            if set(self.scenario.requires_services) <= self.services_up:
                self._ready.set()
        elif isinstance(data, RunStarted):
            self.run_started = True
        elif isinstance(data, RunFinished):
            self.run_finished = True
        elif isinstance(data, ChapterStarted) and data.scenario == self.scenario.name:
            self.last_chapter = data.index
        elif event.type == "chaos.fault_injected" and not self.fault_seq:
            self.fault_seq = d.seq
        chapter = self._chapter
        if chapter is not None and chapter.advance.when is not None and d.seq > self._chapter_seq:
            when = chapter.advance.when
            if when.matches(event) and (not when.after_fault or (self.fault_seq and d.seq > self.fault_seq)):
                self._condition.set()

    # -- commands ---------------------------------------------------------------

    async def _cmd_next(self, req: Request) -> None:
        self._key.set()
        await req.respond(json.dumps({"ok": True, "chapter": self.last_chapter}).encode())

    async def _cmd_status(self, req: Request) -> None:
        await req.respond(json.dumps({"scenario": self.scenario.name, "mode": self.mode, "fault": self.fault,
                                      "chapter": self.last_chapter, "total": len(self.chapters),
                                      "finished": self.run_finished}).encode())

    # -- playing ----------------------------------------------------------------

    async def main(self) -> None:
        self._feed = await self.bus.replay(run_events(self.run), self._on_event, follow=True)
        await self._feed.caught_up.wait()
        self._micro = await add_service(self.bus.nc, name="director", version="0.1.0",
                                        description="Scenario chapters: next, status")
        await self._micro.add_endpoint(name="next", subject=command("director", "next"), handler=self._cmd_next)
        await self._micro.add_endpoint(name="status", subject=command("director", "status"),
                                       handler=self._cmd_status)
        self.ready.set()
        try:
            if not self.run_finished:
                await self._play()
            await self.stopping.wait()
        finally:
            await self._micro.stop()
            await self._feed.stop()

    async def _play(self) -> None:
        start = 0 if self.last_chapter is None else self.last_chapter
        resuming = self.last_chapter is not None
        if not self.run_started:
            await self.emit(RunStarted(scenario=self.scenario.name, subject=self.scenario.subject,
                                       fault=self.fault, config={"mode": self.mode}))
        if not resuming:
            await self._wait_ready()
        for index in range(start, len(self.chapters)):
            if self.stopping.is_set():
                return
            await self._play_chapter(index, enter=not (resuming and index == start))

    async def _wait_ready(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), self.config.director_ready_timeout_s)
        missing = set(self.scenario.requires_services) - self.services_up
        if missing:
            log.warning("starting without services: %s", ", ".join(sorted(missing)))

    async def _play_chapter(self, index: int, *, enter: bool) -> None:
        chapter = self.chapters[index]
        self._chapter, self._condition, self._key = chapter, asyncio.Event(), asyncio.Event()
        started = self.event(ChapterStarted(
            scenario=self.scenario.name, index=index, total=len(self.chapters), chapter=chapter.id,
            title=chapter.title, narration=self._narrate(chapter.narration), advance=chapter.hint(self.mode),
            timeout_s=chapter.advance.timeout_s if self.mode == "auto" else None))
        self._chapter_seq = await self.bus.publish(started)
        log.info("chapter %s/%s %s", index + 1, len(self.chapters), chapter.id)
        if enter:
            if chapter.countdown_s and await self._interrupted(chapter.countdown_s):
                return
            for action in chapter.on_enter:
                await self._act(action)
        reason = await self._wait_advance(chapter)
        await self.emit(ChapterFinished(scenario=self.scenario.name, index=index, chapter=chapter.id,
                                        reason=reason), causation=started.id)

    async def _interrupted(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)  # a presentation pause, not a sync
        return self.stopping.is_set()

    async def _wait_advance(self, chapter: Chapter) -> str:
        waiters: dict[asyncio.Task[Any], str] = {
            asyncio.create_task(self.stopping.wait()): "stopping",
            asyncio.create_task(self._condition.wait()): "condition",
        }
        if self.mode == "interactive" or chapter.advance.key:
            waiters[asyncio.create_task(self._key.wait())] = "key"
        timeout = chapter.advance.timeout_s if self.mode == "auto" else None
        done, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waiters[next(iter(done))] if done else "timeout"

    @property
    def control(self) -> bool:
        return self.scenario.faults[self.fault].control

    def _narrate(self, text: str) -> str:
        summary = self.timeline.summary()
        if self.control:
            verdict = "correct: nobody acted" if summary.actions_after_fault == 0 else "a FALSE POSITIVE"
            line = (f"Control run ({self.fault}): {summary.tickets_after_fault} ticket(s), "
                    f"{summary.actions_after_fault} mutating action(s) - {verdict}.")
        else:
            line = (f"Fault {summary.fault}: ticket {summary.ticket or '-'} {summary.outcome}"
                    f"{' by ' + summary.resolved_by if summary.resolved_by else ''}; "
                    f"time to detect {_secs(summary.ttd_s)}, time to mitigate {_secs(summary.ttm_s)}.")
        return text.strip().format(fault=self.fault, fault_title=self.scenario.faults[self.fault].title,
                                   summary=line)

    async def _act(self, action: Inject | RevertAll | Finish) -> None:
        if isinstance(action, Inject):
            body = {"kind": action.kind.format(fault=self.fault), "ttl_s": action.ttl_s}
            if action.target:
                body["target"] = action.target
            await self._chaos("inject", body)
        elif isinstance(action, RevertAll):
            await self._chaos("revert", {"all": True})
        elif isinstance(action, Finish):
            summary = self.timeline.summary()
            outcome = summary.outcome
            if self.control:
                outcome = "no_action" if summary.actions_after_fault == 0 else "false_positive"
            await self.emit(RunFinished(outcome=outcome, summary={
                **summary.model_dump(mode="json"), "outcome": outcome, "control": self.control}))

    async def _chaos(self, verb: str, body: dict[str, Any]) -> None:
        """Send a chaos command, waiting (bounded) for the chaos service to come up."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15.0
        while True:
            try:
                result = await request(self.bus.nc, "chaos", verb, body)
                log.info("chaos %s -> %s", verb, result)
                return
            except CommandError as exc:
                if exc.code != "503" or loop.time() > deadline or self.stopping.is_set():
                    log.error("chaos %s refused: %s", verb, exc.description)
                    return
            await asyncio.sleep(0.2)  # retrying until the chaos service answers


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"

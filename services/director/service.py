"""The director service: plays a scenario's chapters over the live log.

Modes (``OPLAB_DIRECTOR_MODE``):

- ``interactive``: a chapter advances only on the presenter's key
  (``cmd.director.next``), never on a condition or a timer. The chapter's
  hint says so (``space: next``); ``cmd.director.status`` tells whether its
  condition has been met meanwhile.
- ``auto``: a chapter advances on its event condition or its timeout,
  whichever comes first; a key press also advances (unless ``key: false``).
  The timeout waits while an agent holds a live lease on a ticket (a model
  may take minutes, a human longer to approve): the story does not move on -
  and revert the fault - under an agent at work. A lost agent's lease runs
  out, so this wait is bounded.

Conditions are never missed. Every run event whose type some chapter waits
for is kept in a bounded history (``HISTORY`` events, newest last). On
entering a chapter its predicate is first evaluated against that history -
events after the run's first fault injection for ``after_fault`` predicates,
events after the previous chapter's ``chapter_finished`` otherwise - and then
against each live event. The feed (``ServiceProcess.follow``) and the
chapter switch run on one event loop, and the switch happens without an
``await`` between choosing the chapter and scanning the history, so no event
falls in between.

Commands: ``cmd.director.next``, ``cmd.director.status``.

Entry actions happen exactly once. ``chapter_started`` is the intent: it is
recorded before the chapter's countdown and actions, and each action done is
recorded as ``director.action_taken``. An injection carries a request id
(run, scenario, chapter, action) that the chaos service remembers, so asking
again is answered with the fault already injected, never a second one.

Restarts: the log is the director's memory. A restarted director folds the
run and
- idles if ``run.finished`` is recorded (the scenario is over), and says so
  with what to do (a compose ``up`` after ``down`` meets a finished run);
- otherwise resumes at the chapter the log says it was in, announcing it
  again (``chapter_started``), and completes its entry actions that have no
  ``action_taken`` (after what is left of the countdown) - or, if that chapter
  had finished, enters the next one.
When the last chapter ends, ``run.finished`` is recorded if no ``finish``
action did so.

A fault lost before anyone detected it - its injection refused or failed, or
(for a fault that breaks something) reverted before the run's ticket was
opened - ends the story: the current chapter finishes with reason
``fault_lost`` and the director goes straight to the last chapter (the
summary), which says why. No chapter waits out its timeout for a fault that
is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from datetime import timedelta
from typing import Any, Literal

from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_fixed

from events import (
    ActionTaken,
    ChapterFinished,
    ChapterStarted,
    Event,
    RunFinished,
    RunStarted,
)
from events.bus import Bus
from events.commands import CommandError, request
from events.envelope import utcnow
from events.replay import Delivered
from events.subjects import command, run_domain
from events.waiting import pause_unless
from projections.text import secs
from projections.timeline import RunTimeline
from services.director.scenario import Chapter, Finish, Inject, RevertAll, Scenario
from services.director.story import Story
from services.runtime import ServiceSettings, SubjectService
from subjects.contract import Subject

log = logging.getLogger(__name__)

HISTORY = 5000  # recent run events of the types chapters wait for
# the domains the director folds (plus those its chapters wait for): services, the run, its own
# chapters, faults, violations and tickets
_STORY_DOMAINS = frozenset({"svc", "run", "director", "chaos", "inv", "ticket"})


class DirectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPLAB_", extra="ignore")
    director_mode: Literal["auto", "interactive"] = "auto"
    scenario: str | None = None
    """A scenario of the run's subject, by name or YAML path (default: the subject's first)."""
    fault: str | None = None
    director_ready_timeout_s: float = 30.0
    director_baseline_timeout_s: float = 90.0  # beyond the monitor's own (60 s): it always gets there first
    seed: int | None = None
    """The run's seed (``OPLAB_SEED``, a campaign trial's), recorded in ``run.started``."""


class DirectorService(SubjectService[DirectorSettings]):
    name = "director"

    def __init__(self, bus: Bus, settings: ServiceSettings, *, config: DirectorSettings, subject: Subject,
                 scenario: Scenario, fault: str) -> None:
        """Built by :func:`services.director.bootstrap.build` (in production and in tests alike), which
        loads ``scenario`` and checks that it plays ``fault``."""
        super().__init__(bus, settings, config=config, subject=subject.name)
        self.scenario = scenario
        self.fault = fault
        self.chapters = self.scenario.chapters_for(self.fault)
        self.mode = self.config.director_mode
        self.timeline = RunTimeline()
        self.seen_seq = 0  # last sequence folded
        self.held_by_agent = False  # the chapter's timeout has passed; an agent's lease holds it
        self.story = Story(self.scenario.name, self.scenario.requires_services, control=self.control,
                           may_end=lambda: self._chapter is not self.chapters[-1])
        self._watched = {t for c in self.chapters if c.advance.when is not None for t in c.advance.when.types()}
        self._history: deque[tuple[int, Event]] = deque(maxlen=HISTORY)
        self._chapter: Chapter | None = None
        self._since = 0  # events after this sequence count for the current chapter
        self._condition = asyncio.Event()
        self._key = asyncio.Event()
        self._micro: Service | None = None

    # -- the log ----------------------------------------------------------------

    async def _on_event(self, d: Delivered) -> None:
        event = d.event
        self.seen_seq = d.seq
        self.story.note(event.data, d)
        if event.type in self._watched:
            self._history.append((d.seq, event))
            chapter = self._chapter
            if chapter is not None and self._counts(chapter, d.seq, event):
                self._condition.set()
        self.timeline.apply(event)

    def _counts(self, chapter: Chapter, seq: int, event: Event) -> bool:
        """Does the event at ``seq`` meet ``chapter``'s advance condition?"""
        when = chapter.advance.when
        if when is None or not when.matches(event):
            return False
        if when.run_ticket and getattr(event.data, "ticket_id", None) != self.story.run_ticket:
            return False
        if when.after_fault or when.run_ticket:
            return bool(self.story.fault_seq) and seq > self.story.fault_seq
        return seq > self._since

    def _enter(self, chapter: Chapter, since: int) -> None:
        """Make ``chapter`` current and judge its condition on the history so far.

        Synchronous on purpose: no event can be folded between the switch and
        the scan, and every later event is judged live by ``_on_event``.
        """
        self._chapter, self._since = chapter, since
        self._condition, self._key = asyncio.Event(), asyncio.Event()
        if any(self._counts(chapter, seq, event) for seq, event in self._history):
            self._condition.set()

    # -- commands ---------------------------------------------------------------

    async def _cmd_next(self, req: Request) -> None:
        self._key.set()
        await req.respond(json.dumps({"ok": True, "chapter": self.story.last_started}).encode())

    async def _cmd_status(self, req: Request) -> None:
        await req.respond(json.dumps({
            "scenario": self.scenario.name, "mode": self.mode, "fault": self.fault,
            "chapter": self.story.last_started, "total": len(self.chapters), "finished": self.story.run_finished,
            "condition_met": self._condition.is_set(), "held_by_agent": self.held_by_agent,
            "fault_lost": self.story.lost, "seen_seq": self.seen_seq}).encode())

    # -- playing ----------------------------------------------------------------

    async def main(self) -> None:
        await self.ensure_run_subject(self.subject)
        # what the story needs: never the observations or the agents' steps, the bulk of a long run
        domains = sorted(_STORY_DOMAINS | {t.split(".", 1)[0] for t in self._watched})
        await self.follow([run_domain(self.run, d) for d in domains], self._on_event)
        self._micro = await add_service(self.bus.nc, name="director", version="0.1.0",
                                        description="Scenario chapters: next, status")
        scope = self.settings.command_scope
        await self._micro.add_endpoint(name="next", subject=command("director", "next", scope),
                                       handler=self._cmd_next)
        await self._micro.add_endpoint(name="status", subject=command("director", "status", scope),
                                       handler=self._cmd_status)
        await self.bus.nc.flush()  # ready means the server routes commands to us
        self.ready.set()
        try:
            if self.story.run_finished:
                log.warning("the run is finished: nothing to play. To play again, start a new run: "
                            "`oplab up` / `oplab demo` make one each time; under compose set OPLAB_RUN "
                            "(e.g. OPLAB_RUN=r2 docker compose up -d) or `docker compose down -v` first",
                            extra={"run": self.run})
            else:
                await self._play()
            await self.stopping.wait()
        finally:
            await self._micro.stop()

    def _resume_point(self) -> tuple[int, bool]:
        """(first chapter to play, whether to run its entry actions), from the log."""
        if self.story.last_started is None:
            return 0, True
        if self.story.last_finished == self.story.last_started:
            return self.story.last_started + 1, True
        return self.story.last_started, False

    async def _play(self) -> None:
        start, enter_first = self._resume_point()
        if not self.story.run_started:
            await self.emit(RunStarted(scenario=self.scenario.name, subject=self.subject, fault=self.fault,
                                       seed=self.config.seed, config={"mode": self.mode, "control": self.control}))
        if self.story.last_started is None:
            await self._wait_ready()
        else:
            log.info("resuming", extra={"chapter": start + 1, "chapters": len(self.chapters)})
        since, index, last = self.story.last_finished_seq, start, len(self.chapters) - 1
        while index <= last:
            if self.stopping.is_set():
                return
            played = await self._play_chapter(index, since, enter=enter_first or index != start)
            if played is None:
                return
            since, reason = played
            if reason == "fault_lost" and index < last:
                log.warning("ending the story: the fault is lost", extra={"reason": self.story.lost})
                index = last
            else:
                index += 1
        if not self.story.run_finished and not self.stopping.is_set():
            await self._finish_run()

    async def _wait_ready(self) -> None:
        """The cast is up, and - where the monitor is in it - judging has begun: a fault injected
        before the monitor has seen the subject whole would go unjudged (see the monitor's baseline)."""
        if not set(self.scenario.requires_services) <= self.story.services_up:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.story.services_ready.wait(), self.config.director_ready_timeout_s)
            missing = set(self.scenario.requires_services) - self.story.services_up
            if missing:
                log.warning("starting without services", extra={"missing": sorted(missing)})
        if "monitor" in self.scenario.requires_services and not self.story.baseline.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.story.baseline.wait(), self.config.director_baseline_timeout_s)
            if not self.story.baseline.is_set():
                log.warning("starting before the monitor established its baseline")

    async def _play_chapter(self, index: int, since: int, *, enter: bool) -> tuple[int, str] | None:
        """Play one chapter; returns the sequence of its ``chapter_finished`` and why it ended,
        None if stopped. ``enter`` False: resumed, so only what is left of its entry is done."""
        chapter = self.chapters[index]
        self._enter(chapter, since)
        started = self.event(ChapterStarted(
            scenario=self.scenario.name, index=index, total=len(self.chapters), chapter=chapter.id,
            title=chapter.title, narration=self._narrate(chapter.narration), advance=chapter.hint(self.mode),
            timeout_s=chapter.advance.timeout_s if self.mode == "auto" else None, about=list(chapter.about)))
        await self.bus.publish(started)
        log.info("chapter", extra={"chapter": index + 1, "chapters": len(self.chapters), "id": chapter.id,
                                   "resumed": not enter})
        done = self.story.actions_done.get(index, set())
        pending = [(position, action) for position, action in enumerate(chapter.on_enter) if position not in done]
        if pending:
            countdown = chapter.countdown_s if enter else self._countdown_left(index, chapter)
            if countdown and await self._interrupted(countdown):
                return None
            for position, action in pending:
                result = await self._act(action, index, position, started.id)
                if result is None:  # cut short by our own stop: the successor does it
                    return None
                await self.emit(ActionTaken(scenario=self.scenario.name, index=index, action=position,
                                            kind=action.action, result=result), causation=started.id)
        is_last = index == len(self.chapters) - 1
        reason = await self._wait_advance(chapter, lost_ends_it=not is_last)
        if reason == "stopping":
            return None
        self._chapter = None
        seq = await self.bus.publish(self.event(
            ChapterFinished(scenario=self.scenario.name, index=index, chapter=chapter.id, reason=reason),
            causation=started.id))
        return seq, reason

    def _countdown_left(self, index: int, chapter: Chapter) -> float:
        """What a predecessor's countdown had left when it died (the presentation pause, once)."""
        first = self.story.first_started.get(index)
        if first is None:
            return chapter.countdown_s
        elapsed = (utcnow() - first) / timedelta(seconds=1)
        return max(0.0, chapter.countdown_s - elapsed)

    async def _interrupted(self, seconds: float) -> bool:
        """A presentation pause of ``seconds``, cut short if the service stops; whether it is stopping."""
        return await pause_unless(self.stopping, seconds)

    async def _wait_advance(self, chapter: Chapter, *, lost_ends_it: bool) -> str:
        """Why the chapter ends: ``key``, ``condition``, ``timeout``, ``fault_lost`` or ``stopping``."""
        waiters: dict[asyncio.Task[Any], str] = {
            asyncio.create_task(self.stopping.wait()): "stopping",
        }
        if lost_ends_it:
            waiters[asyncio.create_task(self.story.lost_event.wait())] = "fault_lost"
        timeout = None
        if self.mode == "interactive" or chapter.advance.key:
            waiters[asyncio.create_task(self._key.wait())] = "key"
        if self.mode == "auto":
            waiters[asyncio.create_task(self._condition.wait())] = "condition"
            timeout = chapter.advance.timeout_s
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            # An agent at work holds the story: a model may need minutes, a human longer to
            # approve. Its lease bounds the wait (renewed only while it is alive and working).
            while not done and (busy_s := self._agent_busy_s()) > 0:
                self.held_by_agent = True
                self.story.leases_changed.clear()
                changed = asyncio.create_task(self.story.leases_changed.wait())
                try:
                    done, _ = await asyncio.wait({*waiters, changed}, timeout=busy_s,
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                done = done - {changed}  # a lease ended or moved: look again
        finally:
            self.held_by_agent = False
            for task in waiters:
                task.cancel()
        if not done:
            return "timeout"
        reasons = {waiters[t] for t in done}
        return next(r for r in ("stopping", "fault_lost", "condition", "key") if r in reasons)

    def _agent_busy_s(self) -> float:
        """Seconds until the last live lease on a ticket runs out (0: no agent is working)."""
        now = utcnow()
        return max([(until - now).total_seconds() for until in self.story.leases.values()] + [0.0])

    @property
    def control(self) -> bool:
        return self.scenario.faults[self.fault].control

    def _narrate(self, text: str) -> str:
        return text.strip().format(fault=self.fault, fault_title=self.scenario.faults[self.fault].title,
                                   summary=self._summary_line())

    def _summary_line(self) -> str:
        if self.story.lost is not None:
            return f"Fault {self.fault}: {self.story.lost}. The story ended there: nothing to score."
        summary = self.timeline.summary()
        if self.control:  # the verdict the run.finished outcome and the trial's score give
            verdict = {"no_action": "correct: nobody acted", "false_positive": "a FALSE POSITIVE"}.get(
                summary.finished_outcome(control=True), "the burst never ran: nothing to judge")
            return (f"Control run ({self.fault}): {summary.tickets_after_fault} ticket(s), "
                    f"{summary.actions_after_fault} mutating action(s) - {verdict}.")
        return (f"Fault {summary.fault}: ticket {summary.ticket or '-'} {summary.outcome}"
                f"{' by ' + summary.resolved_by if summary.resolved_by else ''}; "
                f"time to detect {secs(summary.ttd_s, 'n/a')}, time to mitigate {secs(summary.ttm_s, 'n/a')}.")

    async def _act(self, action: Inject | RevertAll | Finish, index: int, position: int,
                   cause: str | None = None) -> dict[str, Any] | None:
        """Do one entry action; returns what came of it (for ``director.action_taken``), or None if
        the director is stopping before it was done (nothing is recorded: a successor does it).
        ``cause``: the ``chapter_started`` asking for it, passed on to an injection as its causation."""
        try:
            if isinstance(action, Inject):
                body: dict[str, Any] = {"kind": action.kind.format(fault=self.fault), "ttl_s": action.ttl_s,
                                        "request_id": f"{self.run}/{self.scenario.name}/{index}/{position}"}
                if cause is not None:
                    body["causation"] = cause
                if action.target:
                    body["target"] = action.target
                fault = (await self._chaos("inject", body))["fault"]
                return {"ok": True, "fault_id": fault.get("fault_id")}
            if isinstance(action, RevertAll):  # the story's clean-up: worth waiting for a successor longer
                await self._chaos("revert", {"all": True}, patience_s=60.0)
            elif isinstance(action, Finish):
                await self._finish_run()
            return {"ok": True}
        except CommandError as exc:
            if self.stopping.is_set():
                return None
            log.error("chaos refused", extra={"action": action.action, "reason": exc.description})
            if isinstance(action, Inject):
                self.story.lose(f"the chaos service refused the injection ({exc.description})")
            return {"ok": False, "error": exc.description}

    async def _finish_run(self) -> None:
        summary = self.timeline.summary()
        outcome = summary.finished_outcome(self.control)  # a control's verdict, as its trial score gives it
        await self.emit(RunFinished(outcome=outcome, summary={
            **summary.model_dump(mode="json"), "outcome": outcome, "control": self.control,
            **({"ended": self.story.lost} if self.story.lost else {})}))
        self.story.run_finished = True  # the feed will say so too; a second finish must not follow meanwhile

    async def _chaos(self, verb: str, body: dict[str, Any], patience_s: float = 15.0) -> dict[str, Any]:
        """Send a chaos command, waiting (bounded) for the chaos service to come up, or its successor
        to take over (503: none there or it is stopping; 504: no answer in time - asking again is
        safe, as an injection carries its request id). Raises CommandError when it refuses or does
        not come back (the last answer), or CommandError 503 when the director stops meanwhile."""

        def away(exc: BaseException) -> bool:
            return isinstance(exc, CommandError) and exc.code in ("503", "504") and not self.stopping.is_set()

        async def pause(seconds: float) -> None:
            if await self._interrupted(seconds):
                raise CommandError("503", "the director is stopping")

        # the chaos service is not up yet: retry shortly (0.2 s) until patience runs out
        retrying = AsyncRetrying(retry=retry_if_exception(away), stop=stop_after_delay(patience_s),
                                 wait=wait_fixed(0.2), sleep=pause, reraise=True)
        result: dict[str, Any] = await retrying(request, self.bus.nc, "chaos", verb, body,
                                                scope=self.settings.command_scope)
        log.info("chaos answered", extra={"verb": verb, "result": result})
        return result

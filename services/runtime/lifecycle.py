"""The life of a service process.

``run_service`` connects the bus, runs the service's ``main`` and records
``svc.started`` once the service says it is ready for work (``ready.set()``:
endpoints registered, state restored from the log), beside a heartbeat, and on SIGTERM/SIGINT asks the service to stop
(``ServiceProcess.stop`` gives it the chance to finish or abandon its current
unit of work explicitly), records ``svc.stopping``, drains NATS and returns 0.
With ``OPLAB_READY_FILE`` set, that file exists exactly while the service is
ready (a container healthcheck tests for it).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Generic, TypeVar

from events import RunStarted, ServiceHeartbeat, ServiceStarted, ServiceStopping
from events.bus import Bus
from events.replay import Delivered, Handler, Replay
from events.settings import BusSettings
from events.structured_logging import configure_logging
from events.subjects import run_type
from events.waiting import pause_unless
from services.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("operator-lab")
    except PackageNotFoundError:
        return "dev"


class ServiceProcess(abc.ABC):
    """A service: ``main`` does the work until ``stopping`` is set."""

    name: str = "service"

    def __init__(self, bus: Bus, settings: ServiceSettings) -> None:
        if not settings.run:
            raise SystemExit(f"{self.name}: OPLAB_RUN is not set (the run id this service serves)")
        self.bus = bus
        self.settings = settings
        self.run = settings.run
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self._feeds: list[Replay] = []

    @abc.abstractmethod
    async def main(self) -> None:
        """Do the service's work; return when ``stopping`` is set."""

    async def stop(self) -> None:
        """Called once on SIGTERM before the bus drains. Override to abandon work explicitly."""
        self.stopping.set()

    async def follow(self, filter_subject: str | Sequence[str], handler: Handler, *,
                     from_time: datetime | None = None) -> Replay:
        """Follow ``filter_subject`` (one filter, or several in one stream order) from the log
        (history, then live) and return once caught up.

        Garbage on the subject is recorded as ``bus.rejected`` (consumer = this
        service) and skipped; a handler error is logged and the feed carries on.
        The replay is stopped automatically when the service stops.
        """
        replay = await self.bus.replay(filter_subject, handler, follow=True, from_time=from_time,
                                       on_invalid=self.bus.rejecter(self.name))
        self._feeds.append(replay)
        await replay.caught_up.wait()
        return replay

    async def ensure_run_subject(self, subject: str) -> None:
        """Refuse to serve a run that ``run.started`` records as another subject's: one subject per
        run, whatever a restarted process's environment says (exits with the reason)."""
        started: list[RunStarted] = []

        async def keep(d: Delivered) -> None:
            if isinstance(d.event.data, RunStarted):
                started.append(d.event.data)

        await self.bus.replay(run_type(self.run, RunStarted), keep)
        if started and started[0].subject != subject:
            raise SystemExit(f"{self.name}: run {self.run} is a run of subject {started[0].subject!r}, but this "
                             f"process serves {subject!r} (OPLAB_SUBJECT): start it with the run's subject")

    async def stop_feeds(self) -> None:
        for feed in self._feeds:
            await feed.stop()
        self._feeds.clear()

    def event(self, data, **kwargs):  # type: ignore[no-untyped-def]
        return self.bus.event(data, run=self.run, **kwargs)

    async def emit(self, data, **kwargs) -> int:  # type: ignore[no-untyped-def]
        return await self.bus.publish(self.event(data, **kwargs))


ConfigT = TypeVar("ConfigT")


class SubjectService(ServiceProcess, Generic[ConfigT]):
    """A service that serves the run's subject: ``config`` is its own settings, ``subject`` the name
    of the subject it serves (``OPLAB_SUBJECT``), which its ``main`` checks first with
    :meth:`ensure_run_subject`. Its bootstrap gives it both, with the role of the subject it works
    through."""

    def __init__(self, bus: Bus, settings: ServiceSettings, *, config: ConfigT, subject: str) -> None:
        super().__init__(bus, settings)
        self.config = config
        self.subject = subject


async def _heartbeat(service: ServiceProcess, started: float) -> None:
    while not service.stopping.is_set():
        if await pause_unless(service.stopping, service.settings.heartbeat_s):
            return
        try:
            await service.emit(ServiceHeartbeat(
                service=service.name, instance=service.settings.instance, version=_version(),
                pid=os.getpid(), uptime_s=round(time.monotonic() - started, 1),
                heartbeat_s=service.settings.heartbeat_s))
        except Exception as exc:  # NATS briefly away: the next beat will tell
            log.warning("heartbeat failed", extra={"error": str(exc)})


Build = Callable[[Bus, ServiceSettings], ServiceProcess]
"""A service's bootstrap (``services.<name>.bootstrap.build``): the service with its dependencies."""


async def serve(factory: type[ServiceProcess], settings: ServiceSettings | None = None,
                bus_settings: BusSettings | None = None, build: Build | None = None) -> int:
    settings = settings or ServiceSettings()
    source = f"{factory.name}/{settings.instance}"
    bus = await Bus.connect((bus_settings or BusSettings()).for_role(factory.name), source=source)
    service = (build or factory)(bus, settings)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    started = time.monotonic()
    _unready(settings)  # a crashed predecessor in the same container may have left it
    main = asyncio.create_task(service.main(), name=f"{factory.name}-main")
    waiter = asyncio.create_task(stop_requested.wait())
    ready = asyncio.create_task(service.ready.wait())
    await asyncio.wait({main, waiter, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if service.ready.is_set():
        await service.emit(ServiceStarted(service=factory.name, instance=settings.instance,
                                          version=_version(), pid=os.getpid(), heartbeat_s=settings.heartbeat_s))
        log.info("started", extra={"service": factory.name, "run": service.run, "instance": settings.instance})
        if settings.ready_file is not None:
            settings.ready_file.write_text(f"{os.getpid()}\n")
    beat = asyncio.create_task(_heartbeat(service, started), name=f"{factory.name}-heartbeat")
    done, _ = await asyncio.wait({main, waiter}, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if main in done and main.exception() is not None:
        log.error("service main failed", exc_info=main.exception())
        status = 1
    reason = "signal" if waiter in done else ("crash" if status else "finished")
    _unready(settings)
    try:
        await service.stop()
    except Exception:  # still record stopping and drain: the log must say we left
        log.exception("service stop failed")
        status = 1
    with contextlib.suppress(Exception):
        await asyncio.wait_for(main, 10.0)
    await service.stop_feeds()
    beat.cancel()
    waiter.cancel()
    try:
        await service.emit(ServiceStopping(service=factory.name, instance=settings.instance,
                                           reason=reason))
    except Exception as exc:
        log.warning("could not record svc.stopping", extra={"error": str(exc)})
    await bus.close()
    log.info("stopped", extra={"service": factory.name, "reason": reason})
    return status


def _unready(settings: ServiceSettings) -> None:
    if settings.ready_file is not None:
        settings.ready_file.unlink(missing_ok=True)


def run_service(factory: type[ServiceProcess], build: Build | None = None) -> None:
    """Entry point for ``python -m services.<name>``: ``build`` makes the service (default: the class
    with the bus and settings alone)."""
    settings = ServiceSettings()
    configure_logging(settings.log_format, settings.log_level)
    raise SystemExit(asyncio.run(serve(factory, settings, build=build)))

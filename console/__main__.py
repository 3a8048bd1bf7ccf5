"""``python -m console --run RUN``: the console as a program of its own.

The CLI (``oplab console`` / ``oplab demo``) normally starts it in-process via
:func:`console.live.run_console`; this entry point is what the compose
``console`` service and the tmux smoke test run. NATS comes from ``--nats-url``
or ``NATS_URL`` / ``OPLAB_NATS_URL``. space/right send ``cmd.director.next``.
Logging goes to ``--log-file`` (never to the terminal the console draws on).
Exit status 0 after ``q``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from console.live import run_console
from events.bus import Bus
from events.commands import request
from events.settings import BusSettings
from events.structured_logging import LogSettings, formatter

log = logging.getLogger("console")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=os.environ.get("OPLAB_RUN"), help="run id (default: $OPLAB_RUN)")
    parser.add_argument("--nats-url", default=None, help="NATS URL (default: settings / $NATS_URL)")
    parser.add_argument("--replay", action="store_true", help="show the stored log instead of following it")
    parser.add_argument("--speed", type=float, default=None, help="replay pace (x original); default: at once")
    parser.add_argument("--log-file", default=None, help="write logs here (default: discard)")
    args = parser.parse_args(argv)
    if not args.run:
        parser.error("--run is required (or set OPLAB_RUN)")
    return args


def _setup_logging(path: str | None) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if path:
        # the lab's structured lines (OPLAB_LOG_FORMAT/OPLAB_LOG_LEVEL, as every process): a plain
        # format would drop the fields the log calls pass
        settings = LogSettings()
        handler = logging.FileHandler(path)
        handler.setFormatter(formatter(settings.log_format))
        root.addHandler(handler)
        root.setLevel(settings.log_level.upper())
    else:
        root.addHandler(logging.NullHandler())
        logging.lastResort = None  # nothing may reach the terminal the console draws on


async def _main(args: argparse.Namespace) -> None:
    settings = BusSettings(nats_url=args.nats_url) if args.nats_url else BusSettings()
    bus = await Bus.connect(settings.for_role("viewer"), source=f"console-{os.getpid()}")

    async def next_chapter() -> None:
        await request(bus.nc, "director", "next", timeout=2.0, wait_for_service_s=0.5)

    try:
        await run_console(bus, args.run, on_next=None if args.replay else next_chapter,
                          replay=args.replay, replay_speed=args.speed)
    finally:
        await bus.close()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _setup_logging(args.log_file)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.exception("console failed")
        sys.stderr.write(f"console failed: {exc!r}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

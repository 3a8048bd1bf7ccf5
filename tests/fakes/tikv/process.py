"""What the doubles' processes (``python -m tests.fakes.tikv.pd``, ``python -m tests.fakes.tikv.store``)
share: where they listen, the host they advertise, how they log and run."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from events.structured_logging import configure_logging


def double_arguments(doc: str, advertise: str) -> argparse.ArgumentParser:
    """A double's command line, described by the first line of its module's ``doc``: ``--listen`` (the
    address to bind) and ``--advertise-host`` (what ``advertise`` says the host is for); the double adds
    its own arguments."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1", help="the address to bind (0.0.0.0 in a container)")
    parser.add_argument("--advertise-host", default="127.0.0.1", help=advertise)
    return parser


def run_double(parser: argparse.ArgumentParser,
               serve: Callable[[argparse.Namespace], Coroutine[Any, Any, None]]) -> None:
    """Serve with the parsed command line until killed, logging as the lab's processes do
    (``key=value`` lines on stderr)."""
    configure_logging()
    asyncio.run(serve(parser.parse_args()))

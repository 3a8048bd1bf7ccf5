"""Reaching the lab's NATS from the CLI, whether or not a stack is running.

Order: the running stack's NATS; else ``NATS_URL``; else a temporary embedded
nats-server on the stack's own store (``<home>/nats``, or a cluster member's,
``<home>/nats-1``: each holds the whole stream), so past runs can be listed and
replayed after ``oplab down``. That server is shared by every reader of the home and stops with
the last of them, however it ends (:mod:`oplab.reader_server`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from events.settings import BusSettings
from oplab.nats_auth import with_user
from oplab.reader_server import reader_server
from oplab.settings import LabSettings
from oplab.stack import Stack
from oplab.stack_info import saved_url


@contextmanager
def lab_nats_url(settings: LabSettings, role: str = "viewer") -> Iterator[str]:
    """The URL to reach the lab's log as ``role`` (see :mod:`oplab.nats_auth`: ``viewer`` reads,
    ``operator`` approves and commands, ``admin`` imports)."""
    stack = Stack(settings)
    running = saved_url(stack.settings.stack_file, "nats_url") if stack.running() else None
    info = stack.info() if running is not None else None
    if info is not None:
        yield stack.nats_url(info, role)
        return
    if running is not None:  # a stack of another lab version
        yield running
        return
    if settings.nats_url:  # a NATS elsewhere (a compose project's, say): its users, if it has any
        credentials = BusSettings(nats_url=settings.nats_url).for_role(role).credentials()
        yield settings.nats_url if credentials is None else with_user(settings.nats_url, *credentials)
        return
    store = stack.home / "nats"
    if not store.exists() and (stack.home / "nats-1").exists():
        store = stack.home / "nats-1"  # a cluster's lab: one member's store holds the whole stream
    # shared by every reader of this home, stopped once the last is gone, whichever way it went
    with reader_server(store, stack.home / "logs" / "reader-nats.log") as url:
        yield url

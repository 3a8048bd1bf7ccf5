"""Probes of the processes a launcher starts, and waiting on them.

Another process's readiness has no event to wait on, so the launchers (:mod:`oplab.stack`,
:mod:`oplab.campaign.trial_stack`) poll: is a port listening (:func:`listening`), a health check
passing (:func:`healthy`), a pid still alive (:func:`pid_alive`, :func:`read_pid`), each under a
deadline (:func:`wait_for`). URLs in what they print go through :func:`redacted`: the lab's own
carry passwords.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from events.waiting import WaitTimeout, wait_until_sync
from oplab.stack_info import StackError
from subjects.contract import HealthCheck


def wait_for(check: Callable[[], bool], timeout: float, message: str) -> None:
    """Poll ``check`` (another process's readiness: no event to wait on) every 0.05 s; StackError
    with ``message`` once it still fails at the deadline."""
    try:
        wait_until_sync(check, timeout=timeout, interval=0.05, what=message)
    except WaitTimeout:
        raise StackError(message) from None


def listening(url: str) -> bool:
    """A TCP connect to ``url``'s host and port succeeds within 0.25 s."""
    host = urlparse(url).hostname or "127.0.0.1"
    try:
        with socket.create_connection((host, port_of(url)), 0.25):
            return True
    except OSError:
        return False


def healthy(check: HealthCheck) -> bool:
    """A TCP connect succeeds (``tcp://``) or a GET answers 200 (``http(s)://``)."""
    if check.url.startswith("tcp://"):
        return listening(check.url)
    try:
        with urllib.request.urlopen(check.url, timeout=0.5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    """The pid in a pid file (supervisord's), or None when there is none to read."""
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts: it cannot be signalled, but is there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def port_of(url: str) -> int:
    """The port ``url`` names; StackError when it names none (the lab always gives one)."""
    port = urlparse(url).port
    if port is None:
        raise StackError(f"no port in {redacted(url)}")
    return port


def redacted(url: str) -> str:
    """``url`` (one, or a cluster's comma-separated) without its passwords, for printing."""
    if "," in url:
        return ",".join(redacted(one.strip()) for one in url.split(","))
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return parsed._replace(netloc=netloc).geturl()

"""Commands: NATS request/reply on ``cmd.<service>.<verb>`` with JSON bodies.

Services answer through ``nats.micro`` endpoints; an error reply carries the
``Nats-Service-Error`` / ``Nats-Service-Error-Code`` headers, which
:func:`request` turns into :class:`CommandError`.
"""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from events.subjects import command


class CommandError(Exception):
    """The service refused or failed the command (``code`` as HTTP-like status)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


async def request(nc: Client, service: str, verb: str, body: dict[str, Any] | None = None,
                  timeout: float = 10.0, wait_for_service_s: float = 3.0, scope: str | None = None) -> dict[str, Any]:
    """Send a command (to the service of lab ``scope``, see :func:`events.subjects.command`); a
    service that is briefly away (restarting) is waited for up to ``wait_for_service_s`` before the
    command fails with 503. No answer within ``timeout`` fails at once with 504 (asking again is the
    caller's decision)."""
    # no responders: a restarting service has not subscribed again yet; ask every 0.1 s until it has
    retrying = AsyncRetrying(retry=retry_if_exception_type(NoRespondersError),
                             stop=stop_after_delay(wait_for_service_s), wait=wait_fixed(0.1), reraise=True)
    try:
        reply = await retrying(nc.request, command(service, verb, scope), json.dumps(body or {}).encode(),
                               timeout=timeout)
    except NoRespondersError as exc:
        raise CommandError("503", f"the {service} service is not running") from exc
    except TimeoutError as exc:
        raise CommandError("504", f"the {service} service did not answer within {timeout}s") from exc
    headers = reply.headers or {}
    if "Nats-Service-Error-Code" in headers:
        raise CommandError(headers["Nats-Service-Error-Code"], headers.get("Nats-Service-Error", "error"))
    try:
        result: dict[str, Any] = json.loads(reply.data or b"{}")
    except ValueError as exc:
        raise CommandError("502", f"the {service} service sent a reply that is not JSON") from exc
    return result

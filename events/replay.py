"""Reading the stream in order: events as delivered, and ordered replays (the bus's reading side).

Contract:
- :func:`replay` delivers, in stream order, the events matching one subject filter or several
  (one ordered consumer, one stream order across all of them), from a sequence or a time, and
  returns once caught up (or keeps following until :meth:`Replay.stop`). Events stored with an
  older schema version arrive upcast (see :mod:`events.upcasting`); bytes that do not decode go to
  ``on_invalid`` or are skipped with a warning, never to the handler.
- :func:`replay_stored` is the same ordered consumer, handing over each message as stored
  (sequence, subject, bytes), undecoded.
- A handler that raises is counted in :attr:`Replay.errors` and logged; the replay carries on
  with the next message (one bad event must not stall the feed or hide the rest).
- Its subscription holds at most :data:`REPLAY_PENDING_MSGS` / :data:`REPLAY_PENDING_BYTES` not yet
  handled; they are high on purpose (see :func:`replay_stored`). Bulk reads with bounded memory
  go through :mod:`events.raw_reader`.

:class:`~events.bus.Bus` offers these as ``bus.replay`` and ``bus.replay_stored``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from events.codec import InvalidEvent, decode
from events.envelope import Event
from events.settings import STREAM_NAME

# The bus's own logger, as before this module was split from events.bus: the CLI quiets the bus's
# warnings by that name, and readers of the logs filter on it.
log = logging.getLogger("events.bus")

#: the most a replay's subscription may hold undelivered to its handler (see :func:`replay_stored`)
REPLAY_PENDING_MSGS = 1_000_000
REPLAY_PENDING_BYTES = 1024**3


@dataclass(frozen=True, slots=True)
class Delivered:
    """An event as read from the stream, with where it sits."""

    event: Event
    seq: int
    subject: str
    num_delivered: int = 1


Handler = Callable[[Delivered], Awaitable[None]]
StoredHandler = Callable[[int, str, bytes], Awaitable[None]]
InvalidHandler = Callable[[InvalidEvent, int, str], Awaitable[None]]


class ReplayOptions(TypedDict, total=False):
    """Where a replay starts and whether it keeps going: the keyword arguments every replay takes
    (:func:`replay`, :func:`replay_stored` and the :class:`~events.bus.Bus` methods that offer them).
    ``from_seq`` (above 1): the first stream sequence to deliver; otherwise ``from_time``: the first
    message stored at or after it; neither: the whole history. ``follow``: keep delivering after
    catching up, until :meth:`Replay.stop` (default False: return once caught up)."""

    from_seq: int | None
    from_time: datetime | None
    follow: bool


class Replay:
    """A running ordered replay. ``caught_up`` is set once the history is delivered."""

    def __init__(self) -> None:
        self.caught_up = asyncio.Event()
        self.delivered = 0
        self.errors = 0
        self.last_seq = 0
        self._sub: Any = None

    async def stop(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception as exc:  # connection already closed: nothing to undo
                log.debug("replay unsubscribe failed", extra={"error": str(exc)})


async def replay(
    js: JetStreamContext,
    filter_subject: str | Sequence[str],
    handler: Handler,
    *,
    on_invalid: InvalidHandler | None = None,
    **options: Unpack[ReplayOptions],
) -> Replay:
    """Deliver matching events in stream order through an ordered consumer.

    ``filter_subject`` is one subject filter or several (one consumer, one
    stream order across all of them). Without ``follow`` this returns after the last stored match has been
    handled. With ``follow`` it returns at once; ``caught_up`` tells when the
    history has been delivered, and delivery continues until ``stop()``.
    Events stored with an older schema version arrive upcast (see :mod:`events.upcasting`).
    """

    async def on_stored(seq: int, subject: str, data: bytes) -> None:
        decoded = decode(data)
        if isinstance(decoded, Event):
            await handler(Delivered(decoded, seq, subject))
        elif on_invalid is not None:
            await on_invalid(decoded, seq, subject)
        else:
            log.warning("replay skipped invalid event", extra={"seq": seq, "reason": decoded.reason})

    return await replay_stored(js, filter_subject, on_stored, **options)


async def replay_stored(
    js: JetStreamContext,
    filter_subject: str | Sequence[str],
    handler: StoredHandler,
    *,
    from_seq: int | None = None,
    from_time: datetime | None = None,
    follow: bool = False,
) -> Replay:
    """As :func:`replay`, but hand over each message as stored: (sequence, subject, bytes),
    undecoded (an export must keep old versions and garbage exactly as they are)."""
    running = Replay()
    subjects = [filter_subject] if isinstance(filter_subject, str) else list(filter_subject)
    if not subjects:
        raise ValueError("replay needs at least one subject filter")
    config = js_api.ConsumerConfig(
        deliver_policy=js_api.DeliverPolicy.ALL,
        inactive_threshold=60.0,
    )
    if len(subjects) > 1:
        config.filter_subjects = subjects
    else:
        config.filter_subject = subjects[0]
    if from_seq is not None and from_seq > 1:
        config.deliver_policy = js_api.DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = from_seq
    elif from_time is not None:
        config.deliver_policy = js_api.DeliverPolicy.BY_START_TIME
        config.opt_start_time = from_time

    async def on_msg(msg: Msg) -> None:
        seq, pending = stream_position(msg)
        try:
            await handler(seq, msg.subject, msg.data)
        except Exception:  # one bad event must not stall the feed or hide the rest
            running.errors += 1
            log.exception("replay handler failed", extra={"seq": seq, "subject": msg.subject})
        running.delivered += 1
        running.last_seq = seq
        if pending == 0:
            running.caught_up.set()

    # nats-py answers the server's flow control as messages arrive, not as the handler takes
    # them: a slow handler lets the subscription's queue grow up to these limits. They stay
    # high on purpose: past them nats-py drops messages *and* moves the ordered consumer past
    # them (nats-py 2.16), a silent gap. Bounded memory for bulk reads: events.raw_reader,
    # which stops and resumes its consumer instead of letting the queue grow.
    sub = await js.subscribe(
        subjects[0],
        stream=STREAM_NAME,
        cb=on_msg,
        ordered_consumer=True,
        config=config,
        idle_heartbeat=2.0,
        pending_msgs_limit=REPLAY_PENDING_MSGS,
        pending_bytes_limit=REPLAY_PENDING_BYTES,
    )
    running._sub = sub
    info = await sub.consumer_info()
    if info.num_pending == 0 and info.delivered.consumer_seq == 0:
        running.caught_up.set()
    if not follow:
        await running.caught_up.wait()
        await running.stop()
    return running


def stream_position(msg: Msg) -> tuple[int, int]:
    """(stream sequence, matching messages still pending) of a JetStream delivery, read from its
    reply subject (ADR-15: ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``,
    or with domain and account hash before the stream: 11 tokens or more). The same figures as
    ``msg.metadata``, without building its objects for every message of a replay."""
    tokens = (msg.reply or "").split(".")
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == 9:
            return int(tokens[5]), int(tokens[8])
        if len(tokens) >= 11:
            return int(tokens[7]), int(tokens[10])
    meta = msg.metadata  # not a JetStream delivery: nats-py raises the error that says so
    return meta.sequence.stream, meta.num_pending

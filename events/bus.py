"""The bus: one JetStream stream (``LAB``) holding every event, plus commands.

Contract:
- ``publish`` stores an event once: its id is the ``Nats-Msg-Id``, so a retried
  publish inside the duplicate window is not stored twice. It returns the
  stream sequence. With ``expected_last_subject_seq`` the write succeeds only
  if the subject's last stored message has that sequence (0: subject empty);
  otherwise :class:`ConcurrencyConflict` is raised.
- ``publish_batch`` pipelines publishes (``publish_async``) for bursts.
- ``replay`` delivers, in order, events matching a filter from a sequence or
  time, and returns once caught up (or keeps following): the ordered consumer
  and its contract are in :mod:`events.replay`. ``run_history`` is one run's
  stored events as a list, read that way.
- ``consume`` runs a durable consumer with explicit acks: a handler that keeps
  failing, or bytes that do not decode, end up as a ``bus.rejected`` event
  with the reason instead of blocking the consumer or vanishing.
- The connection reconnects forever after a NATS restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Unpack
from urllib.parse import urlparse

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_fixed

from events.catalogue.bus import EventRejected
from events.codec import InvalidEvent, decode, encode
from events.envelope import Event, new_event
from events.replay import Delivered, Handler, InvalidHandler, Replay, ReplayOptions, StoredHandler
from events.replay import replay as replay_events
from events.replay import replay_stored as replay_stored_messages
from events.settings import STREAM_NAME, BusSettings
from events.subjects import ALL_EVENTS, event_subject, run_events, run_of

log = logging.getLogger(__name__)

WRONG_LAST_SEQUENCE = 10071
_REDELIVERY_DELAY_S = 0.5
#: NATS away for a moment, so a publish is tried again (NoStreamResponse: the stream has no
#: leader this moment, a cluster electing one); JetStream's own 503 answers are retried too
_PUBLISH_TRANSIENT = (nats.errors.TimeoutError, nats.errors.NoRespondersError, NoStreamResponseError,
                      nats.errors.ConnectionClosedError, nats.errors.OutboundBufferLimitError)
_PUBLISH_PAUSE_S = 0.25  # NATS is away: the back-off before the next attempt


class BusRefused(ConnectionError):
    """The NATS server refused the connection's credentials: a password never fixes itself, so
    connecting stops at once (instead of retrying for ever) and says who was refused where."""


class ConcurrencyConflict(Exception):
    """The subject moved on since it was read: reload and retry, or give up."""


def stream_config(settings: BusSettings) -> js_api.StreamConfig:
    return js_api.StreamConfig(
        name=STREAM_NAME,
        subjects=[ALL_EVENTS],
        storage=js_api.StorageType.FILE,
        retention=js_api.RetentionPolicy.LIMITS,
        max_age=settings.stream_max_age_s,
        max_bytes=settings.stream_max_bytes,
        duplicate_window=settings.stream_duplicate_window_s,
        allow_direct=True,
        num_replicas=settings.stream_replicas,
    )


class Bus:
    """An open connection to the lab's NATS, speaking in events."""

    def __init__(self, nc: Client, settings: BusSettings, source: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=10.0)
        self.settings = settings
        self.source = source

    # -- connection -------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        settings: BusSettings | None = None,
        *,
        source: str,
        ensure_stream: bool = True,
        connect_timeout_s: float = 10.0,
    ) -> Bus:
        settings = settings or BusSettings()

        holder: list[Client] = []

        async def on_disconnect() -> None:
            if holder and (holder[0].is_draining or holder[0].is_closed):
                return  # our own close, not an outage
            log.warning("nats disconnected", extra={"source": source})

        async def on_reconnect() -> None:
            log.info("nats reconnected", extra={"source": source})

        refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_error(exc: Exception) -> None:
            if not holder and "authorization violation" in str(exc).lower() and not refused.done():
                refused.set_exception(BusRefused(
                    f"NATS at {where(settings.nats_url)} refused the connection of {source} "
                    f"({_who(credentials[0] if credentials else _user_in(settings.nats_url))}): authorization "
                    "violation. The lab's NATS has a user per role: give one with OPLAB_NATS_USER and "
                    "OPLAB_NATS_PASSWORD (or a directory of them, OPLAB_NATS_AUTH_DIR)"))
                return
            log.warning("nats error", extra={"source": source, "error": repr(exc)})

        credentials = settings.credentials()
        connecting = asyncio.ensure_future(nats.connect(
            settings.servers(),
            name=source,
            **({"user": credentials[0], "password": credentials[1]} if credentials else {}),
            connect_timeout=connect_timeout_s,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            allow_reconnect=True,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            error_cb=on_error,
        ))
        await asyncio.wait({connecting, refused}, return_when=asyncio.FIRST_COMPLETED)
        if refused.done() and not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            refused.result()  # raises BusRefused
        nc = connecting.result()
        holder.append(nc)
        bus = cls(nc, settings, source)
        if ensure_stream:
            await bus.ensure_stream()
        return bus

    async def ensure_stream(self, *, update: bool = False) -> None:
        """Create the stream if missing. Only with ``update`` are an existing stream's
        limits changed (the launcher does that); other clients never clobber them."""
        config = stream_config(self.settings)
        try:
            info = await self.js.stream_info(STREAM_NAME)
        except NotFoundError:
            try:
                await self.js.add_stream(config)
            except APIError as exc:  # created concurrently by another service
                if exc.err_code != 10058:
                    raise
            return
        if update:  # limits as configured; copies never fewer than the stream has (a NATS of its own may keep 3)
            config.num_replicas = max(config.num_replicas or 1, info.config.num_replicas or 1)
            await self.js.update_stream(config)
        elif info.config.subjects != config.subjects:
            log.warning("stream has other subjects than expected",
                        extra={"stream": STREAM_NAME, "subjects": info.config.subjects, "expected": config.subjects})

    async def close(self) -> None:
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except Exception as exc:  # draining a broken connection: close instead
            log.debug("drain failed", extra={"error": str(exc)})
            await self.nc.close()

    # -- writing ----------------------------------------------------------

    def event(self, data: Any, *, run: str, **kwargs: Any) -> Event:
        """A new event from this bus's source."""
        return new_event(data, run=run, source=self.source, **kwargs)

    async def publish(self, event: Event, *, expected_last_subject_seq: int | None = None,
                      retry_for_s: float = 15.0) -> int:
        """Store ``event``; returns its stream sequence.

        While NATS is unreachable the publish is retried (same ``Nats-Msg-Id``,
        so it is stored at most once) for up to ``retry_for_s``. A retry of a
        write that did land but whose ack was lost comes back as a duplicate
        ack — or, with an expected sequence, as a conflict the caller resolves
        by reloading, as for any lost race.
        """
        headers = {"Nats-Msg-Id": event.id}
        if expected_last_subject_seq is not None:
            headers["Nats-Expected-Last-Subject-Sequence"] = str(expected_last_subject_seq)
        return await self._publish(event_subject(event), encode(event), headers, retry_for_s, event.type)

    async def publish_stored(self, subject: str, data: bytes, msg_id: str, *, retry_for_s: float = 15.0) -> int:
        """Store ``data`` as it is on ``subject`` (an import of an exported run), once per ``msg_id``
        within the duplicate window and retried like :meth:`publish`. Returns its stream sequence."""
        return await self._publish(subject, data, {"Nats-Msg-Id": msg_id}, retry_for_s, subject)

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str], retry_for_s: float,
                       what: str) -> int:
        """One publish, tried again every 0.25 s while NATS is away, until ``retry_for_s`` has passed
        since the first attempt; then the last failure surfaces as it was raised. A lost race
        (wrong last subject sequence) is never retried here: it becomes ConcurrencyConflict."""

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, APIError):
                return exc.code == 503 and exc.err_code != WRONG_LAST_SEQUENCE
            # a connection we closed ourselves never comes back: fail at once
            return isinstance(exc, _PUBLISH_TRANSIENT) and not self.nc.is_closed

        def log_retry(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            log.warning("publish retry", extra={"what": what, "error": repr(failure)})

        started = asyncio.get_running_loop().time()
        try:
            try:  # first without a retrier: building one costs ~0.1 ms, on every event a service records
                ack = await self.js.publish(subject, payload, stream=STREAM_NAME, headers=headers)
            except Exception as exc:
                if not transient(exc) or asyncio.get_running_loop().time() - started >= retry_for_s:
                    raise
                log.warning("publish retry", extra={"what": what, "error": repr(exc)})
                await asyncio.sleep(_PUBLISH_PAUSE_S)
                left = retry_for_s - (asyncio.get_running_loop().time() - started)
                retrying = AsyncRetrying(retry=retry_if_exception(transient), stop=stop_after_delay(max(0.0, left)),
                                         wait=wait_fixed(_PUBLISH_PAUSE_S), before_sleep=log_retry, reraise=True)
                ack = await retrying(self.js.publish, subject, payload, stream=STREAM_NAME, headers=headers)
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrencyConflict(exc.description or "wrong last sequence") from exc
            raise
        return ack.seq

    async def publish_batch(self, events: Sequence[Event]) -> list[int]:
        """Publish many events pipelined; returns their sequences in order."""
        futures = [
            await self.js.publish_async(
                event_subject(e), encode(e), stream=STREAM_NAME, headers={"Nats-Msg-Id": e.id}
            )
            for e in events
        ]
        acks = await asyncio.gather(*futures)
        return [ack.seq for ack in acks]

    # -- reading ----------------------------------------------------------

    async def last_seq(self) -> int:
        info = await self.js.stream_info(STREAM_NAME)
        return info.state.last_seq

    async def read_subject(self, subject: str) -> list[Delivered]:
        """Every stored message on one exact subject, in order (a ticket's history)."""
        out: list[Delivered] = []
        seq = 1
        while True:
            try:
                raw = await self.js.get_msg(STREAM_NAME, seq=seq, subject=subject, next=True)
            except NotFoundError:
                return out
            decoded = decode(raw.data or b"")
            if isinstance(decoded, Event):
                out.append(Delivered(decoded, raw.seq or 0, subject))
            else:
                log.warning("skipping invalid event",
                            extra={"subject": subject, "seq": raw.seq, "reason": decoded.reason})
            seq = (raw.seq or 0) + 1

    async def replay(
        self,
        filter_subject: str | Sequence[str],
        handler: Handler,
        *,
        on_invalid: InvalidHandler | None = None,
        **options: Unpack[ReplayOptions],
    ) -> Replay:
        """Deliver matching events in stream order through an ordered consumer: see
        :func:`events.replay.replay` (one filter or several, ``caught_up``, upcasting) and
        :class:`~events.replay.ReplayOptions` (``from_seq``, ``from_time``, ``follow``)."""
        return await replay_events(self.js, filter_subject, handler, on_invalid=on_invalid, **options)

    async def run_history(self, run: str) -> list[tuple[int, Event]]:
        """Every stored event of ``run`` as (stream sequence, event), in stream order: one :meth:`replay`
        up to what is stored now (no following; what does not decode is skipped, as there)."""
        history: list[tuple[int, Event]] = []

        async def keep(d: Delivered) -> None:
            history.append((d.seq, d.event))

        await self.replay(run_events(run), keep)
        return history

    async def replay_stored(
        self,
        filter_subject: str | Sequence[str],
        handler: StoredHandler,
        **options: Unpack[ReplayOptions],
    ) -> Replay:
        """As :meth:`replay`, but hand over each message as stored: (sequence, subject, bytes),
        undecoded (see :func:`events.replay.replay_stored`)."""
        return await replay_stored_messages(self.js, filter_subject, handler, **options)

    async def consume(
        self,
        durable: str,
        filter_subject: str,
        handler: Handler,
        *,
        deliver_new_only: bool = False,
    ) -> Any:
        """Run a durable, explicitly acknowledged consumer; returns its subscription.

        The handler is called once per message, in order. If it raises, the
        message is redelivered (up to ``max_deliver`` times), then recorded as
        ``bus.rejected`` and dropped from the consumer.
        """
        max_deliver = self.settings.max_deliver
        config = js_api.ConsumerConfig(
            durable_name=durable,
            filter_subject=filter_subject,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_s,
            max_deliver=max_deliver,
            deliver_policy=(
                js_api.DeliverPolicy.NEW if deliver_new_only else js_api.DeliverPolicy.ALL
            ),
            max_ack_pending=1000,
        )

        async def on_msg(msg: Msg) -> None:
            meta = msg.metadata
            seq = meta.sequence.stream
            decoded = decode(msg.data)
            if isinstance(decoded, InvalidEvent):
                await self._reject(durable, msg.subject, seq, decoded.reason, decoded.preview)
                await msg.term()
                return
            try:
                await handler(Delivered(decoded, seq, msg.subject, meta.num_delivered))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("handler failed", extra={"consumer": durable, "seq": seq, "attempt": meta.num_delivered})
                if meta.num_delivered >= max_deliver:
                    if decoded.type != EventRejected.TYPE:
                        await self._reject(durable, msg.subject, seq,
                                           f"handler failed {max_deliver} times: {exc!r}",
                                           msg.data[:200].decode("utf-8", "replace"))
                    await msg.term()
                else:
                    await msg.nak(delay=_REDELIVERY_DELAY_S)
                return
            await msg.ack()

        return await self.js.subscribe(
            filter_subject,
            durable=durable,
            stream=STREAM_NAME,
            cb=on_msg,
            manual_ack=True,
            config=config,
        )

    def rejecter(self, consumer: str) -> InvalidHandler:
        """An ``on_invalid`` handler that records garbage as ``bus.rejected`` for ``consumer``."""

        async def reject(invalid: InvalidEvent, seq: int, subject: str) -> None:
            await self._reject(consumer, subject, seq, invalid.reason, invalid.preview)

        return reject

    async def _reject(self, consumer: str, subject: str, seq: int, reason: str, raw: str) -> None:
        log.warning("message rejected", extra={"consumer": consumer, "subject": subject, "seq": seq, "reason": reason})
        run = run_of(subject) or "unknown"
        event = self.event(
            EventRejected(consumer=consumer, subject=subject, seq=seq, reason=reason, raw=raw),
            run=run,
        )
        try:
            await self.publish(event)
        except Exception:  # the rejection record is best effort; the log line remains
            log.exception("could not record rejection", extra={"seq": seq})


def where(url: str) -> str:
    """``url`` (one, or a cluster's comma-separated) without credentials, for messages."""
    shown = []
    for one in url.split(","):
        parts = urlparse(one.strip())
        shown.append(f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
    return ",".join(shown)


def _user_in(url: str) -> str | None:
    return urlparse(url.split(",")[0].strip()).username


def _who(user: str | None) -> str:
    return f"user {user!r}" if user else "no user: anonymous connections are refused"

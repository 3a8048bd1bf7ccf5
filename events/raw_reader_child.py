"""The reader process itself (the child): ``python -m events.raw_reader`` runs :func:`main`.

It connects with the settings its caller sends on stdin, says it is ready, replays the stored
history from the sequence the caller then sends, and writes it to stdout in batch frames
(:mod:`events.raw_reader_wire`); the caller's side, and the contract both keep, are in
:mod:`events.raw_reader`.

Memory stays bounded (:class:`_Writer`, :func:`_read_history`): at most one batch being written
to the pipe and one being filled, and at most ``backlog_bytes`` queued for the caller; past that
the consumer is stopped, and a new one resumes after the last message handed over. The process
exits as soon as its stdin closes, and reports a failure in-band (a :data:`FAILED` frame) with the
traceback on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import json
import logging
import os
import queue
import resource
import sys
import threading
from typing import Any, BinaryIO

from events import raw_reader_wire as wire
from events.bus import Bus, where
from events.settings import BusSettings
from events.structured_logging import configure_logging

log = logging.getLogger(__name__)


class ReaderFailure(RuntimeError):
    """A failure this process explains itself: its message is sent to the caller as the reason, as it
    is (any other exception is sent with its type's name)."""


class _Writer:
    """Batches records and writes them to ``out`` from a thread of its own, one frame at a time,
    in order (the event loop only queues frames: it is busy handing over messages).

    :meth:`add` never waits (it is the consumer's handler: nats-py would queue behind it without
    bound, see ``Bus.replay_stored``). Once more than ``backlog_bytes`` wait to be written it is
    :attr:`paused`: it takes nothing more (the messages nats-py still hands over are read again
    later, from :attr:`last_seq` + 1) and :attr:`backlogged` is set; :attr:`drained` is set once
    the backlog is written down to half (what is left covers the time to resume). The reader
    stops its consumer in between.
    """

    def __init__(self, out: BinaryIO, batch_bytes: int, backlog_bytes: int) -> None:
        self.out = out
        self.batch_bytes = batch_bytes
        self.backlog_bytes = backlog_bytes
        self.parts: list[bytes] = []
        self.size = 0
        self.backlog = 0  # bytes queued for the thread and not written yet, and in self.parts
        self.peak_backlog = 0
        self.paused = False
        self.last_seq = 0  #: the last sequence taken
        self.taken = 0  #: messages taken
        self.backlogged = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self._loop = asyncio.get_running_loop()
        self._frames: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._unwritten = 0
        self._all_written = asyncio.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._write_frames, name="raw-reader-writer", daemon=True)
        self._thread.start()

    async def add(self, seq: int, subject: str, data: bytes) -> None:
        if self.paused:
            return  # not taken: read again after last_seq when the consumer resumes
        self.last_seq = seq
        self.taken += 1
        record = wire.pack_record(seq, subject, data)
        self.parts.append(record)
        self.size += len(record)
        self.backlog += len(record)
        if self.size >= self.batch_bytes:
            self.cut()

    def cut(self) -> None:
        """The records so far make a batch frame, queued for writing."""
        if self.parts:
            self.backlog -= self.size  # counted again, as a frame, by queue
            self.queue(wire.BATCH, b"".join(self.parts))
            self.parts, self.size = [], 0

    def queue(self, kind: bytes, payload: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        data = wire.frame(kind, payload)
        self.backlog += len(data)
        self.peak_backlog = max(self.peak_backlog, self.backlog)
        if self.backlog > self.backlog_bytes:
            self.paused = True
            self.backlogged.set()
            self.drained.clear()
        self._unwritten += 1
        self._all_written.clear()
        self._frames.put(data)

    async def close(self) -> None:
        """Until every queued frame is written; raises what a write raised."""
        self._frames.put(None)
        if self._unwritten:
            await self._all_written.wait()
        if self._failure is not None:
            raise self._failure

    def _write_frames(self) -> None:
        while (data := self._frames.get()) is not None:
            try:
                self.out.write(data)
                self.out.flush()
            except BaseException as exc:  # the caller is gone: tell the loop, write no more
                self._loop.call_soon_threadsafe(self._failed, exc)
                return
            self._loop.call_soon_threadsafe(self._written, len(data))

    def _written(self, size: int) -> None:
        self.backlog -= size
        self._unwritten -= 1
        if self.backlog <= self.backlog_bytes // 2:
            self.backlogged.clear()
            self.drained.set()
        if self._unwritten == 0:
            self._all_written.set()

    def _failed(self, exc: BaseException) -> None:
        self._failure = exc
        self._all_written.set()
        self.drained.set()


async def _serve(request: dict[str, Any], out: BinaryIO) -> None:
    settings = BusSettings(nats_url=request["nats_url"], nats_user=request.get("user"),
                           nats_password=request.get("password"))
    writer = _Writer(out, int(request.get("batch_bytes") or wire.DEFAULT_BATCH_BYTES),
                     int(request.get("backlog_bytes") or wire.BACKLOG_BYTES))
    _widen_pipe(1, int(request.get("pipe_bytes") or wire.PIPE_BYTES))
    timeout = float(request.get("connect_timeout_s") or wire.CONNECT_TIMEOUT_S)
    try:
        # Bus.connect waits for a NATS that is away (services do); this reader's caller is connected
        # already, so a NATS that does not answer now is an error to report, not to wait out
        bus = await asyncio.wait_for(Bus.connect(settings, source="raw-reader", ensure_stream=False),
                                     timeout)
    except TimeoutError:
        raise ReaderFailure(f"no answer from NATS at {where(settings.nats_url)} in {timeout:g} s") from None
    try:
        writer.queue(wire.READY, b"")
        start = json.loads(await asyncio.get_running_loop().run_in_executor(None, _read_line, 0) or b"null")
        if start is None:
            return  # the caller closed our stdin: it needs us no more
        threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
        figures = await _read_history(bus, request["filter_subjects"], int(start["from_seq"]), writer)
        writer.cut()
        figures["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        figures["peak_backlog_bytes"] = writer.peak_backlog
        writer.queue(wire.END, json.dumps(figures).encode())
        await writer.close()
    finally:
        await bus.close()


async def _read_history(bus: Bus, subjects: list[str], from_seq: int, writer: _Writer) -> dict[str, Any]:
    """Replay ``subjects`` from ``from_seq`` into ``writer`` until caught up. Whenever the writer
    is backlogged (the caller reads slower than NATS delivers), the consumer is stopped, and a
    new one resumes after the last message handed over once the backlog is written: memory
    stays bounded, and the history stays gapless and in order."""
    errors, pauses = 0, 0
    writer.last_seq = from_seq - 1
    while True:
        writer.paused = False
        replay = await bus.replay_stored(subjects, writer.add, from_seq=writer.last_seq + 1, follow=True)
        caught_up = asyncio.create_task(replay.caught_up.wait())
        backlogged = asyncio.create_task(writer.backlogged.wait())
        try:
            await asyncio.wait({caught_up, backlogged}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            caught_up.cancel()
            backlogged.cancel()
            await replay.stop()
        errors += replay.errors
        # caught up, and the last message pending was taken (not dropped while pausing): done
        if replay.caught_up.is_set() and writer.last_seq >= replay.last_seq:
            return {"delivered": writer.taken, "last_seq": writer.last_seq, "errors": errors, "pauses": pauses}
        pauses += 1
        await writer.drained.wait()


def _exit_when_stdin_closes() -> None:
    """The caller closed our stdin (it is done, or it died): stop at once."""
    while os.read(0, 65536):  # the raw descriptor: no buffer lock held at interpreter exit
        pass
    os._exit(0)


def _widen_pipe(fd: int, size: int) -> None:
    """Let the pipe to the caller hold a few batches (Linux; 64 KiB by default): while the caller's
    event loop waits for its GIL, this process keeps writing instead of waiting with it."""
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):  # not a pipe, or above the system's limit: keep the default
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)


def _read_line(fd: int) -> bytes:
    """One line from a raw descriptor, byte by byte: nothing after it is consumed (a buffered
    reader would hold the rest, and its lock, away from the stdin watcher)."""
    line = bytearray()
    while (byte := os.read(fd, 1)) and byte != b"\n":
        line += byte
    return bytes(line)


def main() -> None:
    """``python -m events.raw_reader``: one JSON request line on stdin, frames on stdout."""
    configure_logging("kv", "WARNING")  # stderr, which the caller reports when the process ends early
    out = sys.stdout.buffer
    # everything this process allocates from here on is a message on its way out: collect rarely
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)
    request = json.loads(_read_line(0) or b"{}")
    try:
        asyncio.run(_serve(request, out))
    except Exception as exc:  # the caller gets the reason in-band, and the traceback on stderr
        log.exception("reader failed")
        reason = str(exc) if isinstance(exc, ReaderFailure) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            out.write(wire.frame(wire.FAILED, reason.encode()))
            out.flush()
        sys.exit(1)


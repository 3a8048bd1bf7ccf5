"""Reading the stream in a process of its own: stored messages, undecoded, in framed batches.

Why a process: receiving a message through nats-py (protocol and header parsing, the ordered
consumer's bookkeeping) costs about as much CPU as decoding and folding it, and in one process
the GIL runs those one after the other. A reader process receives while the caller decodes
and folds, on another core (docs/architecture.md, "Performance").

Contract:

- :func:`read_stored` starts ``python -m events.raw_reader``, which connects with the caller's
  :class:`BusSettings` (credentials are handed over on its stdin, never on its command line or
  in its environment), says it is ready, then runs an ordered consumer on ``filter_subject``
  from ``from_seq`` (:meth:`Bus.replay_stored`) and ends once the history stored when it
  started is delivered. With ``from_seq=None`` the caller picks the start later
  (:meth:`RawReader.start`), once it has seen it ready (:meth:`RawReader.wait_ready`): the
  caller may read by itself while the process starts, and hand over.
- :meth:`RawReader.batches` yields lists of ``(seq, subject, data)`` in stream order, exactly
  as stored: no gap, no duplicate (the ordered consumer's guarantee), nothing decoded. Each
  batch holds about ``batch_bytes`` of data.
- Memory is bounded on both sides: the child has at most one batch being written to the pipe
  (1 MiB) and one being filled, and waits while the pipe is full; nats-py's flow control then
  stalls the server. A caller that stops reading stops the whole chain.
- The child never outlives its caller: it exits when its stdin closes, and leaving the
  ``async with`` block stops it (on every way out). A child that cannot connect within
  ``connect_timeout_s``, or fails later, raises :class:`RawReaderError` with the reason.
- Frames on the pipe: kind (1 byte: ``R`` ready, ``B`` batch, ``E`` end with the child's
  figures as JSON, ``F`` failure with the reason), payload length (uint32 LE), payload. A batch
  is records of seq (uint64), subject length (uint16), data length (uint32), subject, data.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import gc
import json
import logging
import os
import queue
import resource
import struct
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from events.settings import BusSettings

log = logging.getLogger(__name__)

StoredMessage = tuple[int, str, bytes]
"""A message as stored: (stream sequence, subject, data)."""

DEFAULT_BATCH_BYTES = 256 * 1024
PIPE_BYTES = 1024 * 1024  # /proc/sys/fs/pipe-max-size's default
BACKLOG_BYTES = 16 * 1024 * 1024  # data a reader holds for its caller (beyond the pipe) before it pauses

_FRAME = struct.Struct("<cI")
_RECORD = struct.Struct("<QHI")
_READY, _BATCH, _END, _FAILED = b"R", b"B", b"E", b"F"
_STOP_WAIT_S = 5.0
CONNECT_TIMEOUT_S = 10.0
_STDERR_LINES = 20


class RawReaderError(RuntimeError):
    """The reader process failed (could not connect, lost the stream...): nothing after the
    last batch it delivered can be trusted to be complete."""


@dataclass
class ReaderStats:
    """What the reader process delivered, counted in the caller."""

    messages: int = 0  #: stored messages received
    batches: int = 0  #: frames received
    high_water_bytes: int = 0  #: the largest batch received, in bytes (the reader's buffer bound)
    last_seq: int = 0  #: the last sequence received
    child: dict[str, Any] = field(default_factory=dict)  #: the child's own end-of-run figures


class RawReader:
    """A running reader process (see the module contract). Make with :func:`read_stored`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        # its stderr is read all along: a child whose stderr pipe fills up would block for ever
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._stderr_reader = asyncio.create_task(self._keep_stderr())
        self.stats = ReaderStats()
        self.ended = False  #: the child said its last word: the end of the history, or why it failed
        self._ready = False

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def wait_ready(self) -> None:
        """Until the child is connected to NATS and waits for :meth:`start` (it takes about half a
        second to start: the caller may read in the meantime). Raises if it could not connect."""
        if self._ready:
            return
        kind, payload = await self._next_frame()
        if kind == _FAILED:
            self.ended = True  # it said why: its stderr adds nothing
            raise RawReaderError(payload.decode("utf-8", "replace"))
        if kind != _READY:
            raise RawReaderError(f"the reader process sent {kind!r} before it was ready")
        self._ready = True

    async def start(self, from_seq: int) -> None:
        """Have the child read from ``from_seq`` (once)."""
        stdin = self._proc.stdin
        assert stdin is not None
        stdin.write(json.dumps({"from_seq": from_seq}).encode() + b"\n")
        await stdin.drain()

    async def _next_frame(self) -> tuple[bytes, bytes]:
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            kind, length = _FRAME.unpack(await stdout.readexactly(_FRAME.size))
            return kind, await stdout.readexactly(length)
        except asyncio.IncompleteReadError:
            raise RawReaderError(f"the reader process ended before the history did: {await self._failure()}")\
                from None

    async def batches(self) -> AsyncIterator[list[StoredMessage]]:
        """Every batch up to the end of the stored history, then return (after :meth:`start`)."""
        await self.wait_ready()
        while True:
            kind, payload = await self._next_frame()
            length = len(payload)
            if kind == _BATCH:
                batch = parse_batch(payload)
                self.stats.batches += 1
                self.stats.messages += len(batch)
                self.stats.high_water_bytes = max(self.stats.high_water_bytes, length)
                if batch:
                    self.stats.last_seq = batch[-1][0]
                yield batch
            elif kind == _END:
                self.stats.child = json.loads(payload)
                self.ended = True
                return
            elif kind == _FAILED:
                self.ended = True  # it said why: its stderr adds nothing
                raise RawReaderError(payload.decode("utf-8", "replace"))
            else:
                raise RawReaderError(f"the reader process sent an unknown frame {kind!r}")

    async def _keep_stderr(self) -> None:
        stderr = self._proc.stderr
        assert stderr is not None
        while line := await stderr.readline():
            self._stderr.append(line.decode("utf-8", "replace").rstrip())

    async def _failure(self) -> str:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._proc.wait(), _STOP_WAIT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_reader), _STOP_WAIT_S)
        tail = " | ".join(list(self._stderr)[-3:])
        return f"exit status {self._proc.returncode}" + (f": {tail}" if tail else "")

    async def stop(self) -> None:
        """End the child: close its stdin (it exits), then terminate, then kill if it lingers."""
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        for signal_it in (None, proc.terminate, proc.kill):
            if proc.returncode is not None:
                break
            if signal_it is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal_it()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), _STOP_WAIT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_reader), _STOP_WAIT_S)
        self._stderr_reader.cancel()
        if self._stderr and not self.ended:
            log.warning("reader process pid=%s ended with: %s", proc.pid, " | ".join(list(self._stderr)[-3:]))


@contextlib.asynccontextmanager
async def read_stored(settings: BusSettings, filter_subject: str | Sequence[str], *, from_seq: int | None = 1,
                      batch_bytes: int = DEFAULT_BATCH_BYTES, backlog_bytes: int = BACKLOG_BYTES,
                      pipe_bytes: int = PIPE_BYTES,
                      connect_timeout_s: float = CONNECT_TIMEOUT_S) -> AsyncIterator[RawReader]:
    """A reader process for ``filter_subject`` from ``from_seq``; stopped when the block exits.
    With ``from_seq=None`` it connects and waits for :meth:`RawReader.start`. A NATS that does not
    answer within ``connect_timeout_s`` fails the reader. The child holds at most about
    ``backlog_bytes`` (plus a batch) that the caller has not read beyond what the pipe
    (``pipe_bytes``) holds, and pauses its consumer meanwhile."""
    subjects = [filter_subject] if isinstance(filter_subject, str) else list(filter_subject)
    if not subjects:
        raise ValueError("a reader needs at least one subject filter")
    credentials = settings.credentials()
    request = {
        "nats_url": settings.nats_url,
        "user": credentials[0] if credentials else None,
        "password": credentials[1] if credentials else None,
        "filter_subjects": subjects,
        "batch_bytes": batch_bytes,
        "backlog_bytes": backlog_bytes,
        "pipe_bytes": pipe_bytes,
        "connect_timeout_s": connect_timeout_s,
    }
    # the request is the whole configuration: the child must not pick other settings from our env
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "events.raw_reader",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    reader = RawReader(proc)
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        await proc.stdin.drain()
        if from_seq is not None:
            await reader.start(from_seq)
        yield reader
    finally:
        await reader.stop()


def parse_batch(payload: bytes) -> list[StoredMessage]:
    """The records of one batch frame."""
    out: list[StoredMessage] = []
    unpack, size, pos, end = _RECORD.unpack_from, _RECORD.size, 0, len(payload)
    view = memoryview(payload)
    while pos < end:
        seq, subject_len, data_len = unpack(payload, pos)
        pos += size
        subject = str(view[pos:pos + subject_len], "utf-8")
        pos += subject_len
        out.append((seq, subject, payload[pos:pos + data_len]))
        pos += data_len
    return out


def pack_record(seq: int, subject: str, data: bytes) -> bytes:
    """One record of a batch frame."""
    raw_subject = subject.encode()
    return _RECORD.pack(seq, len(raw_subject), len(data)) + raw_subject + data


def frame(kind: bytes, payload: bytes) -> bytes:
    return _FRAME.pack(kind, len(payload)) + payload


# -- the child ------------------------------------------------------------------


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
        record = pack_record(seq, subject, data)
        self.parts.append(record)
        self.size += len(record)
        self.backlog += len(record)
        if self.size >= self.batch_bytes:
            self.cut()

    def cut(self) -> None:
        """The records so far make a batch frame, queued for writing."""
        if self.parts:
            self.backlog -= self.size  # counted again, as a frame, by queue
            self.queue(_BATCH, b"".join(self.parts))
            self.parts, self.size = [], 0

    def queue(self, kind: bytes, payload: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        data = frame(kind, payload)
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
    from events.bus import Bus, where  # the child's own import: the parent side needs no NATS client

    settings = BusSettings(nats_url=request["nats_url"], nats_user=request.get("user"),
                           nats_password=request.get("password"))
    writer = _Writer(out, int(request.get("batch_bytes") or DEFAULT_BATCH_BYTES),
                     int(request.get("backlog_bytes") or BACKLOG_BYTES))
    _widen_pipe(1, int(request.get("pipe_bytes") or PIPE_BYTES))
    timeout = float(request.get("connect_timeout_s") or CONNECT_TIMEOUT_S)
    try:
        # Bus.connect waits for a NATS that is away (services do); this reader's caller is connected
        # already, so a NATS that does not answer now is an error to report, not to wait out
        bus = await asyncio.wait_for(Bus.connect(settings, source="raw-reader", ensure_stream=False),
                                     timeout)
    except TimeoutError:
        raise RawReaderError(f"no answer from NATS at {where(settings.nats_url)} in {timeout:g} s") from None
    try:
        writer.queue(_READY, b"")
        start = json.loads(await asyncio.get_running_loop().run_in_executor(None, _read_line, 0) or b"null")
        if start is None:
            return  # the caller closed our stdin: it needs us no more
        threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
        figures = await _read_history(bus, request["filter_subjects"], int(start["from_seq"]), writer)
        writer.cut()
        figures["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        figures["peak_backlog_bytes"] = writer.peak_backlog
        writer.queue(_END, json.dumps(figures).encode())
        await writer.close()
    finally:
        await bus.close()


async def _read_history(bus: Any, subjects: list[str], from_seq: int, writer: _Writer) -> dict[str, Any]:
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
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s raw_reader %(message)s")
    out = sys.stdout.buffer
    # everything this process allocates from here on is a message on its way out: collect rarely
    gc.freeze()
    gc.set_threshold(50_000, 20, 50)
    request = json.loads(_read_line(0) or b"{}")
    try:
        asyncio.run(_serve(request, out))
    except Exception as exc:  # the caller gets the reason in-band, and the traceback on stderr
        log.exception("reader failed")
        reason = str(exc) if isinstance(exc, RawReaderError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            out.write(frame(_FAILED, reason.encode()))
            out.flush()
        sys.exit(1)


if __name__ == "__main__":
    main()

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
- What passes on the child's stdin and stdout (the request, frames, batch records) is in
  :mod:`events.raw_reader_wire`; the child's code in :mod:`events.raw_reader_child`. This module is
  the caller's side.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from events import raw_reader_wire as wire
from events.settings import BusSettings

log = logging.getLogger(__name__)

_STOP_WAIT_S = 5.0
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
        if kind == wire.FAILED:
            self.ended = True  # it said why: its stderr adds nothing
            raise RawReaderError(payload.decode("utf-8", "replace"))
        if kind != wire.READY:
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
            kind, length = wire.FRAME.unpack(await stdout.readexactly(wire.FRAME.size))
            return kind, await stdout.readexactly(length)
        except asyncio.IncompleteReadError:
            raise RawReaderError(f"the reader process ended before the history did: {await self._failure()}")\
                from None

    async def batches(self) -> AsyncIterator[list[wire.StoredMessage]]:
        """Every batch up to the end of the stored history, then return (after :meth:`start`)."""
        await self.wait_ready()
        while True:
            kind, payload = await self._next_frame()
            length = len(payload)
            if kind == wire.BATCH:
                batch = wire.parse_batch(payload)
                self.stats.batches += 1
                self.stats.messages += len(batch)
                self.stats.high_water_bytes = max(self.stats.high_water_bytes, length)
                if batch:
                    self.stats.last_seq = batch[-1][0]
                yield batch
            elif kind == wire.END:
                self.stats.child = json.loads(payload)
                self.ended = True
                return
            elif kind == wire.FAILED:
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
            log.warning("reader process ended early, with output on stderr",
                        extra={"pid": proc.pid, "stderr": " | ".join(list(self._stderr)[-3:])})


@contextlib.asynccontextmanager
async def read_stored(settings: BusSettings, filter_subject: str | Sequence[str], *, from_seq: int | None = 1,
                      batch_bytes: int = wire.DEFAULT_BATCH_BYTES, backlog_bytes: int = wire.BACKLOG_BYTES,
                      pipe_bytes: int = wire.PIPE_BYTES,
                      connect_timeout_s: float = wire.CONNECT_TIMEOUT_S) -> AsyncIterator[RawReader]:
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


if __name__ == "__main__":  # the command :func:`read_stored` starts (as documented); the child's code is its own module
    from events.raw_reader_child import main

    main()

"""What passes between a reader process (:mod:`events.raw_reader_child`) and its caller
(:mod:`events.raw_reader`): both sides build and read it from here, so they cannot disagree.

Contract:

- On the child's stdin: one JSON request line (``nats_url``, ``user``, ``password``,
  ``filter_subjects``, ``batch_bytes``, ``backlog_bytes``, ``pipe_bytes``, ``connect_timeout_s``;
  a size or timeout left out falls back to the defaults here), then, once the child is ready, one
  JSON line ``{"from_seq": N}``. Closing stdin ends the child.
- Frames on the pipe (the child's stdout): kind (1 byte: :data:`READY`, :data:`BATCH`,
  :data:`END` with the child's figures as JSON, :data:`FAILED` with the reason), payload length
  (uint32 LE), payload. A batch is records of seq (uint64), subject length (uint16), data length
  (uint32), subject, data.
"""

from __future__ import annotations

import struct

StoredMessage = tuple[int, str, bytes]
"""A message as stored: (stream sequence, subject, data)."""

DEFAULT_BATCH_BYTES = 256 * 1024
PIPE_BYTES = 1024 * 1024  # /proc/sys/fs/pipe-max-size's default
BACKLOG_BYTES = 16 * 1024 * 1024  # data a reader holds for its caller (beyond the pipe) before it pauses
CONNECT_TIMEOUT_S = 10.0

FRAME = struct.Struct("<cI")
RECORD = struct.Struct("<QHI")
READY, BATCH, END, FAILED = b"R", b"B", b"E", b"F"


def frame(kind: bytes, payload: bytes) -> bytes:
    """One frame: its header, then ``payload``."""
    return FRAME.pack(kind, len(payload)) + payload


def pack_record(seq: int, subject: str, data: bytes) -> bytes:
    """One record of a batch frame."""
    raw_subject = subject.encode()
    return RECORD.pack(seq, len(raw_subject), len(data)) + raw_subject + data


def parse_batch(payload: bytes) -> list[StoredMessage]:
    """The records of one batch frame."""
    out: list[StoredMessage] = []
    unpack, size, pos, end = RECORD.unpack_from, RECORD.size, 0, len(payload)
    view = memoryview(payload)
    while pos < end:
        seq, subject_len, data_len = unpack(payload, pos)
        pos += size
        subject = str(view[pos:pos + subject_len], "utf-8")
        pos += subject_len
        out.append((seq, subject, payload[pos:pos + data_len]))
        pos += data_len
    return out

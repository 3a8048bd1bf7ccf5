"""Runs as files: export a run's events as JSON lines; import such a file into a lab's log.

The format, one object per line in stream order::

    {"seq": 12, "subject": "lab.<run>.obs.snapshot", "data": {...the event as stored...}}
    {"seq": 13, "subject": "lab.<run>.obs.snapshot", "raw": "<base64 of stored bytes that are no event>"}

``data`` is the stored event exactly as it was written, schema version
included: a run recorded by an older lab and imported into a newer one is
upcast when read, like any old run in the log (``events.upcasting``). What was
stored but is no event at all (garbage someone published on the run's
subjects) travels as ``raw`` bytes, so the import holds what the log held, and
its readers reject it as they did when it was recorded. ``seq`` is where it sat
in the exporting lab's stream (an import gets new sequences).

An import checks every line before storing anything (JSON; on a subject of one
run; an event that decodes sits on the subject it belongs on), then stores
what the log does not hold yet, in order: importing a file twice stores nothing
twice, and an import cut short (NATS went away) is completed by importing the
same file again.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from events import Event, decode
from events.bus import Bus
from events.settings import BusSettings
from events.subjects import ROOT, event_subject, run_events, run_of


class ArchiveError(ValueError):
    """The file is not an exported run; the message says where and why."""


class RunAlreadyInLog(ArchiveError):
    """Every event of the archive is already in this lab's log (imported before, or recorded here)."""


@dataclass(frozen=True)
class StoredMessage:
    """One message of an archive: where it was stored, its bytes, and its identity in the log."""

    subject: str
    raw: bytes
    event: Event | None  # None: it does not decode (kept as it was stored)

    @property
    def msg_id(self) -> str:
        return self.event.id if self.event is not None else identity(self.raw)


@dataclass(frozen=True)
class Archive:
    run: str
    messages: list[StoredMessage]

    @property
    def undecodable(self) -> int:
        return sum(m.event is None for m in self.messages)


@dataclass(frozen=True)
class Imported:
    run: str
    stored: int
    already: int


def identity(raw: bytes) -> str:
    """How a stored message is recognised in the log: its event id, else a digest of its bytes."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("id"), str):
        return str(doc["id"])
    return "import-" + hashlib.sha256(raw).hexdigest()[:32]


async def export_run(nats_url: str, run: str, out: TextIO) -> int:
    """Write every stored message of ``run`` to ``out``; returns how many."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-export")
    count = 0

    async def write(seq: int, subject: str, data: bytes) -> None:
        nonlocal count
        line: dict[str, Any] = {"seq": seq, "subject": subject}
        if isinstance(decode(data), Event):
            line["data"] = json.loads(data)
        else:  # not an event: its exact bytes
            line["raw"] = base64.b64encode(data).decode()
        out.write(json.dumps(line, separators=(",", ":")) + "\n")
        count += 1

    try:
        await bus.replay_stored(run_events(run), write)
    finally:
        await bus.close()
    return count


def read_archive(path: Path) -> Archive:
    """Parse and check an exported run. Raises :class:`ArchiveError` naming the line at fault."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{path}: cannot read it: {exc}") from exc
    messages: list[StoredMessage] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            messages.append(_message(line, f"{path}:{number}"))
    if not messages:
        raise ArchiveError(f"{path}: no events")
    runs = {run_of(m.subject) for m in messages}
    if len(runs) > 1:
        raise ArchiveError(f"{path}: holds several runs ({', '.join(sorted(map(str, runs)))}); "
                           "export one run per file")
    return Archive(str(runs.pop()), messages)


def _message(line: str, where: str) -> StoredMessage:
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise ArchiveError(f"{where}: not JSON ({exc})") from exc
    subject = doc.get("subject") if isinstance(doc, dict) else None
    if not isinstance(subject, str) or not subject.startswith(f"{ROOT}.") or run_of(subject) is None:
        raise ArchiveError(f"{where}: expected an object with a \"subject\" of the lab's log (lab.<run>.…)")
    if isinstance(doc.get("data"), dict):
        raw = json.dumps(doc["data"], separators=(",", ":")).encode()
    elif isinstance(doc.get("raw"), str):
        try:
            raw = base64.b64decode(doc["raw"], validate=True)
        except ValueError as exc:
            raise ArchiveError(f"{where}: \"raw\" is not base64 ({exc})") from exc
    else:
        raise ArchiveError(f"{where}: expected \"data\" (an event) or \"raw\" (stored bytes)")
    decoded = decode(raw)
    if not isinstance(decoded, Event):
        return StoredMessage(subject, raw, None)
    if event_subject(decoded) != subject:
        raise ArchiveError(f"{where}: a {decoded.type} of run {decoded.run} does not belong on {subject}")
    return StoredMessage(subject, raw, decoded)


async def import_run(nats_url: str, archive: Archive) -> Imported:
    """Store the messages of ``archive`` the lab's log does not hold yet, in order. Raises
    :class:`RunAlreadyInLog` (storing nothing) if it holds them all."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-import")
    try:
        present: set[str] = set()

        async def remember(seq: int, subject: str, data: bytes) -> None:
            present.add(identity(data))

        await bus.replay_stored(run_events(archive.run), remember)
        missing = [m for m in archive.messages if m.msg_id not in present]
        if not missing:
            raise RunAlreadyInLog(f"run {archive.run} is already in the log: nothing imported")
        for message in missing:
            await bus.publish_stored(message.subject, message.raw, message.msg_id)
    finally:
        await bus.close()
    return Imported(archive.run, stored=len(missing), already=len(archive.messages) - len(missing))

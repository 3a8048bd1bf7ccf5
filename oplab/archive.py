"""Runs as files: export a run's events as JSON lines; import such a file into a lab's log.

The format, one object per line in stream order::

    {"seq": 12, "subject": "lab.<run>.obs.snapshot", "data": {...the event as stored...}}

``data`` is the stored event exactly as it was written, schema version
included: a run recorded by an older lab and imported into a newer one is
upcast when read, like any old run in the log (``events.upcasting``). ``seq``
is where it sat in the exporting lab's stream (an import gets new sequences).

An import is all or nothing: every line is checked first (JSON, a valid event
of one run on the subject that event belongs on), and a run that is already in
the log is refused, so importing twice stores nothing twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nats.js.errors import NotFoundError

from events import Event, decode
from events.bus import Bus
from events.settings import STREAM_NAME, BusSettings
from events.subjects import event_subject, run_events


class ArchiveError(ValueError):
    """The file is not an exported run; the message says where and why."""


class RunAlreadyInLog(ArchiveError):
    """The archive's run is already in this lab's log (imported before, or recorded here)."""


@dataclass(frozen=True)
class StoredEvent:
    subject: str
    raw: bytes
    event: Event


@dataclass(frozen=True)
class Archive:
    run: str
    events: list[StoredEvent]


async def export_run(nats_url: str, run: str, out: TextIO) -> int:
    """Write every stored event of ``run`` to ``out``; returns how many."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-export")
    count = 0

    async def write(seq: int, subject: str, data: bytes) -> None:
        nonlocal count
        try:
            doc = json.loads(data)
        except ValueError:  # garbage stays garbage, but readable: as a string
            doc = data.decode("utf-8", errors="replace")
        out.write(json.dumps({"seq": seq, "subject": subject, "data": doc}, separators=(",", ":")) + "\n")
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
    events: list[StoredEvent] = []
    runs: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise ArchiveError(f"{where}: not JSON ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("subject"), str) or not isinstance(
                doc.get("data"), dict):
            raise ArchiveError(f"{where}: expected an object with \"subject\" and \"data\"")
        raw = json.dumps(doc["data"], separators=(",", ":")).encode()
        decoded = decode(raw)
        if not isinstance(decoded, Event):
            raise ArchiveError(f"{where}: not an event: {decoded.reason}")
        if event_subject(decoded) != doc["subject"]:
            raise ArchiveError(f"{where}: a {decoded.type} of run {decoded.run} does not belong on {doc['subject']}")
        runs.add(decoded.run)
        events.append(StoredEvent(doc["subject"], raw, decoded))
    if not events:
        raise ArchiveError(f"{path}: no events")
    if len(runs) > 1:
        raise ArchiveError(f"{path}: holds several runs ({', '.join(sorted(runs))}); export one run per file")
    return Archive(runs.pop(), events)


async def import_run(nats_url: str, archive: Archive) -> int:
    """Store every event of ``archive`` in the lab's log; returns how many. Raises
    :class:`RunAlreadyInLog` (storing nothing) if the run is already there."""
    bus = await Bus.connect(BusSettings(nats_url=nats_url), source="oplab-import")
    try:
        if await _has_run(bus, archive.run):
            raise RunAlreadyInLog(f"run {archive.run} is already in the log: nothing imported")
        for stored in archive.events:
            await bus.publish_stored(stored.subject, stored.raw, stored.event.id)
    finally:
        await bus.close()
    return len(archive.events)


async def _has_run(bus: Bus, run: str) -> bool:
    try:
        await bus.js.get_msg(STREAM_NAME, seq=1, subject=run_events(run), next=True)
    except NotFoundError:
        return False
    return True

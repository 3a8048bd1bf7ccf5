"""Runs as files: an exported run imports into another lab as it was stored (garbage included); bad files
are refused before anything is stored; importing twice stores nothing twice; a cut-short import completes."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from events.bus import Bus
from events.settings import BusSettings
from events.subjects import run_events
from oplab.archive import ArchiveError, RunAlreadyInLog, export_run, import_run, read_archive
from oplab.infra import RunningServer, start_nats
from oplab.reports.reading import read_run
from tests.console.script import node_kill_story

OPLAB = str(Path(sys.executable).parent / "oplab")


async def test_an_exported_run_imports_into_another_lab_as_it_was(
        bus: Bus, nats_server: RunningServer, run_id: str, tmp_path: Path) -> None:
    story = node_kill_story(run_id)
    await bus.publish_batch(story.events)
    out = io.StringIO()
    assert await export_run(nats_server.url, run_id, out) == len(story.events)
    path = tmp_path / "run.jsonl"
    path.write_text(out.getvalue())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["data"]["id"] for line in lines] == [e.id for e in story.events]
    assert all(line["subject"].startswith(f"lab.{run_id}.") and line["seq"] > 0 for line in lines)

    other = start_nats(tmp_path / "other-nats")
    try:
        archive = read_archive(path)
        assert archive.run == run_id and len(archive.messages) == len(story.events) and archive.undecodable == 0
        done = await import_run(other.url, archive)
        assert (done.run, done.stored, done.already) == (run_id, len(story.events), 0)
        assert await read_run(other.url, run_id) == story.events
        with pytest.raises(RunAlreadyInLog, match="already in the log: nothing imported"):
            await import_run(other.url, archive)
        assert len(await read_run(other.url, run_id)) == len(story.events)
    finally:
        other.stop()


async def stored_of(url: str, run: str) -> list[tuple[str, bytes]]:
    bus = await Bus.connect(BusSettings(nats_url=url), source="test")
    found: list[tuple[str, bytes]] = []

    async def keep(seq: int, subject: str, data: bytes) -> None:
        found.append((subject, data))

    try:
        await bus.replay_stored(run_events(run), keep)
    finally:
        await bus.close()
    return found


async def test_garbage_in_a_run_travels_as_it_was_stored(
        bus: Bus, nats_server: RunningServer, run_id: str, tmp_path: Path) -> None:
    story = node_kill_story(run_id)
    await bus.publish_batch(story.events[:3])
    await bus.nc.publish(f"lab.{run_id}.obs.snapshot", b"\xff not json")  # a hostile publisher's bytes
    await bus.nc.publish(f"lab.{run_id}.obs.snapshot", b'{"type": "obs.snapshot", "v": 1, "data": []}')
    await bus.nc.flush()
    await bus.publish_batch(story.events[3:5])
    out = io.StringIO()
    assert await export_run(nats_server.url, run_id, out) == 7
    path = tmp_path / "garbage.jsonl"
    path.write_text(out.getvalue())
    archive = read_archive(path)
    assert archive.undecodable == 2
    other = start_nats(tmp_path / "other-nats")
    try:
        done = await import_run(other.url, archive)
        assert done.stored == 7
        assert await stored_of(other.url, run_id) == await stored_of(nats_server.url, run_id)
        assert len(await read_run(other.url, run_id)) == 5  # the readers skip (reject) the garbage, as before
    finally:
        other.stop()


async def test_an_import_cut_short_is_completed_by_importing_again(
        bus: Bus, nats_server: RunningServer, run_id: str, tmp_path: Path) -> None:
    story = node_kill_story(run_id)
    await bus.publish_batch(story.events)
    out = io.StringIO()
    await export_run(nats_server.url, run_id, out)
    path, head = tmp_path / "whole.jsonl", tmp_path / "head.jsonl"
    path.write_text(out.getvalue())
    head.write_text("".join(out.getvalue().splitlines(keepends=True)[:4]))  # what landed before NATS went away
    other = start_nats(tmp_path / "other-nats")
    try:
        assert (await import_run(other.url, read_archive(head))).stored == 4
        done = await import_run(other.url, read_archive(path))
        assert (done.stored, done.already) == (len(story.events) - 4, 4)
        assert await read_run(other.url, run_id) == story.events  # whole, in order, nothing twice
    finally:
        other.stop()


def _event_line(run: str = "r20261201t000000-aaaa") -> dict:  # type: ignore[type-arg]
    event = node_kill_story(run).events[0]
    return {"seq": 1, "subject": f"lab.{run}.{event.type}", "data": json.loads(event.model_dump_json())}


@pytest.mark.parametrize("content, message", [
    ("", "no events"),
    ("{not json\n", ":1: not JSON"),
    ('{"subject": "lab.r.run.started"}\n', ':1: expected "data" (an event) or "raw" (stored bytes)'),
    ('{"subject": "elsewhere", "data": {}}\n', ':1: expected an object with a "subject" of the lab\'s log'),
    ('{"subject": "lab.r.x.y", "raw": "not base64!"}\n', ':1: "raw" is not base64'),
])
def test_a_file_that_is_not_an_exported_run_is_refused_with_the_line(
        tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ArchiveError, match=re.escape(message)):
        read_archive(path)


def test_an_event_on_a_subject_it_does_not_belong_on_is_refused(tmp_path: Path) -> None:
    line = {**_event_line(), "subject": "lab.r20261201t000000-aaaa.chaos.fault_injected"}
    path = tmp_path / "moved.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(ArchiveError, match=r"does not belong on lab\.r20261201t000000-aaaa\.chaos\.fault_injected"):
        read_archive(path)


def test_one_run_per_file(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text(json.dumps(_event_line("r20261201t000000-aaaa")) + "\n"
                    + json.dumps(_event_line("r20261201t000000-bbbb")) + "\n")
    with pytest.raises(ArchiveError, match="holds several runs"):
        read_archive(path)


def test_the_cli_says_when_there_is_nothing_to_export_and_leaves_no_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    out = tmp_path / "none.jsonl"
    result = subprocess.run([OPLAB, "export", "r20991231t000000-ffff", "-o", str(out)],
                            env={**env, "OPLAB_HOME": str(tmp_path / "oplab")}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and "no events for run 'r20991231t000000-ffff'" in result.stderr
    assert not out.exists()
    bad = subprocess.run([OPLAB, "import", str(tmp_path / "missing.jsonl")],
                         env={**env, "OPLAB_HOME": str(tmp_path / "oplab")}, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "cannot read it" in bad.stderr and "Traceback" not in bad.stderr
    dotted = subprocess.run([OPLAB, "export", "a.b", "-o", str(out)], env={**env, "OPLAB_HOME": str(tmp_path / "o")},
                            capture_output=True, text=True, timeout=60)
    assert dotted.returncode == 2 and "'a.b' is not a run id" in dotted.stderr and "Traceback" not in dotted.stderr


def test_a_failed_export_leaves_an_existing_file_alone(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    out = tmp_path / "precious.jsonl"
    out.write_text("keep me\n")
    result = subprocess.run([OPLAB, "export", "r20991231t000000-ffff", "-o", str(out)],
                            env={**env, "OPLAB_HOME": str(tmp_path / "oplab")}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert out.read_text() == "keep me\n" and not list(tmp_path.glob(".*partial"))

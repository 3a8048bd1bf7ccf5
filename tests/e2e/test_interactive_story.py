"""The story matches the facts on the real stack: in interactive mode the incident is over inside
"Breaking it", and the Detection chapter the presenter reaches afterwards tells it from the log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from console.layout import render_text
from events import Event
from events.bus import Bus
from events.commands import request
from oplab.settings import LabSettings
from oplab.stack import Stack
from projections.lab_view import LabView
from tests.e2e.conftest import RunLog, brisk_scenario, follow_run

pytestmark = pytest.mark.e2e


async def press_next(bus: Bus, log: RunLog, index: int) -> Event:
    """Press space as the console does (``cmd.director.next``) once chapter ``index - 1`` shows; the
    chapter ``index`` it starts."""
    await log.wait_for(lambda e: e.type == "director.chapter_started" and e.data.index == index - 1, 90,
                       f"chapter {index}")
    await request(bus.nc, "director", "next")
    return await log.wait_for(lambda e: e.type == "director.chapter_started" and e.data.index == index, 20,
                              f"chapter {index + 1}")


async def test_the_detection_chapter_reached_after_the_incident_names_its_ticket_from_the_log(
        lab_settings: LabSettings, bus: Bus, tmp_path: Path) -> None:
    scenario = brisk_scenario("ratelimiter", tmp_path)  # no countdown before the injection
    stack = Stack(lab_settings.model_copy(update={"scenario": str(scenario)}))
    try:
        info = await asyncio.to_thread(stack.up, fault="node_kill", mode="interactive")
        log, replay = await follow_run(bus, info.run)
        try:
            await press_next(bus, log, 1)
            breaking = await press_next(bus, log, 2)
            assert breaking.data.about == ["injection"]
            # the presenter lingers on "Breaking it": the whole incident happens meanwhile. Its ticket is
            # the first opened after the injection (another symptom may have a ticket of its own)
            injected = await log.wait_for(lambda e: e.type == "chaos.fault_injected", 30, "injection")
            opened = await log.wait_for(lambda e: e.type == "ticket.opened" and e.time >= injected.time, 30,
                                        "the run's ticket")
            ticket = opened.data.ticket_id
            resolved = await log.wait_for(lambda e: e.type == "ticket.resolved" and e.data.ticket_id == ticket,
                                          60, f"{ticket} resolved")
            detection = await press_next(bus, log, 3)
        finally:
            await replay.stop()  # type: ignore[attr-defined]
    finally:
        await asyncio.to_thread(stack.down)
    assert detection.data.chapter == "detection" and detection.data.about == ["detection"]
    assert resolved.time < detection.time
    assert ticket not in detection.data.narration  # the template does not know it ...

    view = LabView(info.run)
    upto = log.seq_of(detection)
    for seq, event in log.events:
        if seq <= upto:
            view.apply(event)
    ttd = (opened.time - injected.time).total_seconds()
    for size in ((80, 24), (200, 60)):
        text = "\n".join(render_text(view, size, detection.time))

        # ... the log does: the narration names the ticket and its time to detect
        assert (f"{ticket} opened {ttd:.2f} s after the injection: {opened.data.invariant} on {opened.data.entity}"
                in text)
        assert f"Incident · node_kill {injected.data.target} · {ticket}" in text


async def test_with_approval_the_remedy_waits_for_the_presenter(lab_settings: LabSettings, bus: Bus) -> None:
    """`oplab demo --approve`: the launcher's ``approval`` setting reaches the agent, whose remedy then
    waits in the log (and in the Remediation chapter's facts) for a human."""
    stack = Stack(lab_settings.model_copy(update={"approval": "manual"}))
    try:
        info = await asyncio.to_thread(stack.up, fault="node_kill", mode="interactive")
        log, replay = await follow_run(bus, info.run)
        try:
            await log.wait_for(lambda e: e.type == "inv.baseline", 30, "the monitor's baseline")  # as the director does
            await request(bus.nc, "chaos", "inject", {"kind": "node_kill", "target": "node-2", "ttl_s": 120})
            asked = await log.wait_for(lambda e: e.type == "ticket.action_requested", 60, "a remedy asked for")
        finally:
            await replay.stop()  # type: ignore[attr-defined]
    finally:
        await asyncio.to_thread(stack.down)
    assert asked.data.awaiting_approval
    view = LabView(info.run)
    for _, event in log.events:
        view.apply(event)
    incident = view.incident.current()
    assert incident is not None
    waiting = [f.text for f in incident.facts("remediation") if not f.done]
    assert waiting == [f"restart_node(node-2) waits for your approval [{asked.data.action_id}]"]

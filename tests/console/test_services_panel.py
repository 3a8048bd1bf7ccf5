"""The Services panel: live instances alive, a killed one gone beside its successor, compact."""

from __future__ import annotations

import pytest

from console.layout import render_text
from console.panels import services_lines
from events import ServiceHeartbeat, ServiceStarted, ServiceStopping
from projections.lab_view import LabView
from tests.console.script import Story, node_kill_story

RUN = "r20261124t235800-0a0b"


def text(line: object) -> str:
    if isinstance(line, str):
        return line
    if isinstance(line, tuple):
        return str(line[1])
    assert isinstance(line, list)
    return "".join(text(part) for part in line)


def fold(story: Story) -> LabView:
    return story.folded(LabView(RUN))


def killed_projector(story: Story, kills: int = 1) -> Story:
    """The projector started at 0 s; each kill (no svc.stopping) at 6 s, 26 s.. and a successor 2 s later."""
    story.at(0, ServiceStarted(service="projector", instance="p0", version="t", pid=10))
    story.at(0, ServiceStarted(service="monitor", instance="m0", version="t", pid=20))
    for k in range(kills):
        base = 20.0 * k
        story.at(base + 5, ServiceHeartbeat(service="projector", instance=f"p{k}", version="t", pid=10 + k,
                                            uptime_s=5))
        story.at(base + 8, ServiceStarted(service="projector", instance=f"p{k + 1}", version="t", pid=11 + k))
    for t in range(5, int(20 * kills) + 20, 5):
        story.at(t, ServiceHeartbeat(service="monitor", instance="m0", version="t", pid=20, uptime_s=t))
    story.events.sort(key=lambda e: e.time)
    return story


def test_a_killed_projector_shows_gone_beside_its_alive_successor() -> None:
    story = killed_projector(Story(RUN))
    lines = [text(line) for line in services_lines(fold(story), story.t(14))]
    assert [line.split()[:3] for line in lines] == [
        ["monitor", "alive", "m0"], ["projector", "gone", "p0"], ["projector", "alive", "p1"]]


def test_before_it_missed_a_beat_the_killed_instance_still_counts_as_alive() -> None:
    story = killed_projector(Story(RUN))
    lines = [text(line) for line in services_lines(fold(story), story.t(9))]
    assert sum(line.split()[:2] == ["projector", "alive"] for line in lines) == 2


def test_only_the_latest_gone_instance_of_a_service_is_listed() -> None:
    story = killed_projector(Story(RUN), kills=3)
    lines = [text(line) for line in services_lines(fold(story), story.t(60))]
    projector = [line.split()[1:3] for line in lines if line.startswith("projector")]
    assert projector == [["gone", "p2"], ["alive", "p3"]]


def test_services_that_stopped_cleanly_say_stopped() -> None:
    story = Story(RUN)
    story.at(0, ServiceStarted(service="chaos", instance="c0", version="t", pid=1))
    story.at(3, ServiceStopping(service="chaos", instance="c0"))
    assert [text(line).split()[:2] for line in services_lines(fold(story), story.t(4))] == [["chaos", "stopped"]]


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_the_screen_with_replaced_services_still_fits(size: tuple[int, int]) -> None:
    story = node_kill_story(RUN)
    end = max(e.time for e in story.events)
    killed_projector(story, kills=3)
    view = fold(story)
    lines = render_text(view, size, max(end, story.t(60)))
    cols, rows = size
    assert len(lines) == rows and all(len(line) <= cols for line in lines)
    if size == (200, 60):
        screen = "\n".join(lines)
        assert "projector  gone" in screen and "projector  alive" in screen

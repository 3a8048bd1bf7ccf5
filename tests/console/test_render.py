"""Console panels rendered headless (urwid canvases / urwid.testing) for a scripted run."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import pytest
import urwid
from urwid.testing import check_box_sizing

from console.app import ConsoleApp
from console.format import fmt_clock
from console.layout import build_screen, render_text
from console.narration import narration_lines, narration_title
from console.panels import approval_lines, chaos_lines, cluster_lines, footer_parts, workload_lines
from console.screen import LabScreen
from events import AgentThought, TicketActionRequested, TicketClaimed, TicketEscalated
from events.waiting import wait_until
from projections.lab_view import LabView
from subjects.contract import fmt_duration
from tests.console.screens import WatchedScreen
from tests.console.script import Story, node_kill_story

RUN = "r20261124t235800-0a0b"
SIZES = [(80, 24), (200, 60)]


def fold(events: list, run: str = RUN) -> LabView:
    view = LabView(run)
    for event in events:
        view.apply(event)
    return view


def mid_story() -> tuple[Story, LabView, datetime]:
    """The node_kill story up to the agent's restart action (rl-2 down, ticket remediating)."""
    story = node_kill_story(RUN)
    upto = next(i for i, e in enumerate(story.events) if e.type == "ticket.action_executed")
    return story, fold(story.events[: upto + 1]), story.t(12.5)


def plain(lines: list[str]) -> str:
    return "\n".join(lines)


def assert_fits(lines: list[str], size: tuple[int, int]) -> None:
    cols, rows = size
    assert len(lines) == rows
    assert all(len(line) <= cols for line in lines), [line for line in lines if len(line) > cols]


@pytest.mark.parametrize("size", SIZES)
def test_mid_story_screen_shows_the_whole_situation(size: tuple[int, int]) -> None:
    _, view, now = mid_story()
    lines = render_text(view, size, now)
    assert_fits(lines, size)
    text = plain(lines)
    assert RUN in lines[0] and "chapter 3/7" in lines[0] and "00:12" in lines[0]
    assert "─ 3/7 · Fault injection ─" in text or "┌ 3/7 · Fault injection ─" in text
    assert "Chaos kills one rate limiter node." in text
    assert "next in 22s" in text  # chapter started at 5 s with a 30 s timeout
    assert "rl-2     DOWN seen 13s ago" in text
    assert "rl-1     UP" in text
    assert "redis    OK   0.6 ms" in text
    assert "TTL 1m57s" in text and "node_kill rl-2" in text  # expires at 130 s
    assert "tk-1 remediating" in text
    assert "Agent · tk-1 · agent-1 · remediating" in text
    # the agent panel keeps the newest steps: 80x24 has no room left for the oldest, the claim
    assert ("claimed by agent-1 (rules)" in text) is (size != (80, 24))
    assert "diagnosed: rl-2 process died" in text
    assert "action executed: restart_node(node='rl-2') -> ok" in text
    assert "space/→" in lines[-1] and "q  quit" in lines[-1]


@pytest.mark.parametrize("size", SIZES)
def test_end_of_story_screen(size: tuple[int, int]) -> None:
    story = node_kill_story(RUN)
    view = fold(story.events)
    text = plain(render_text(view, size, story.t(15)))
    assert "tk-1 resolved" in text
    assert "resolved by agent (agent-1)" in text
    assert "no active faults" in text
    assert "last: node_kill rl-2" in text and "reverted (explicit)" in text
    assert "DOWN" not in text


@pytest.mark.parametrize("size", [*SIZES, (100, 30), (120, 40), (60, 15), (40, 10), (39, 10), (10, 3)])
def test_an_empty_view_renders_at_any_size(size: tuple[int, int]) -> None:
    view = LabView(RUN)
    lines = render_text(view, size, datetime.now().astimezone())
    assert_fits(lines, size)
    text = plain(lines)
    if size[0] >= 80:
        assert f"Waiting for events of run {RUN}" in text
        assert "no tickets" in text and "no observation yet" in text
    elif size[0] >= 40 and size[1] >= 10:
        assert "Waiting for events" in text and "quit" in lines[-1]
    else:
        assert text.startswith("terminal")


@pytest.mark.parametrize("size", [*SIZES, (100, 30), (150, 45)])
def test_the_full_story_fits_at_other_sizes(size: tuple[int, int]) -> None:
    story = node_kill_story(RUN)
    lines = render_text(fold(story.events), size, story.t(15))
    assert_fits(lines, size)


@pytest.mark.parametrize("size", [*SIZES, (40, 12), (300, 100)])
def test_lab_screen_box_sizing_holds_for_degenerate_sizes(size: tuple[int, int]) -> None:
    """Whatever the size (the design sizes, the smallest compact screen, a huge one) and the degenerate
    sizes urwid may ask for (a row or a column of it, none at all), the screen is a canvas of exactly
    that size; its text fits, and the layout keeps what matters most on it."""
    cols, rows = size
    _, view, now = mid_story()
    check_box_sizing(LabScreen(view, lambda: now), cols=cols, rows=rows)
    check_box_sizing(LabScreen(LabView(RUN), lambda: now), cols=cols, rows=rows)
    lines = render_text(view, size, now)
    assert_fits(lines, size)
    assert "chapter 3/7" in lines[0] and "quit" in lines[-1]
    assert "Fault injection" in lines[1] and "Chaos kills one rate limiter node." in lines[2]
    if size == (40, 12):  # the compact layout's least rows: narration, then cluster|workload, cut at the footer
        assert "Cluster" in lines[6] and "Workload" in lines[6] and "rl-2     DOWN" in lines[8]
    if size == (300, 100):  # room to spare: every panel, and the agent's whole story without a cut
        text = plain(lines)
        assert all(title in text for title in ("Cluster", "Workload", "Chaos", "Services", "Tickets", "Incident",
                                               "Agent · tk-1"))
        assert "opened: node_down rl-2" in text and "earlier" not in text


def panel_rows(lines: list[str], title: str) -> list[str]:
    """The text rows of the panel whose title starts with ``title`` (ruled at 80x24, boxed when wide):
    the screen rows below its title, cut to the title's span, without borders."""
    pattern = re.compile(r"[─┌] " + re.escape(title) + r"[^─]*─+┐?")
    top, match = next((i, m) for i, line in enumerate(lines) if (m := pattern.search(line)))
    rows: list[str] = []
    for line in lines[top + 1:]:
        part = line[match.start():match.end()]
        if not part or part.startswith(("─", "└", "┌")) or "quit" in line:
            break
        rows.append(part.strip("│").rstrip())
    return rows


@pytest.mark.parametrize("size", SIZES)
def test_over_limit_keys_come_first_and_are_flagged(size: tuple[int, int]) -> None:
    s = Story(RUN)
    s.snapshot(1, counters={"user:calm": (10, 100), "user:drift": (250, 100)})
    workload = [row for row in panel_rows(render_text(fold(s.events), size, s.t(2)), "Workload") if row]
    assert [row.split()[0] for row in workload] == ["user:drift", "user:calm"]
    assert "250/100 OVER" in workload[0]
    assert "10/100" in workload[1] and "OVER" not in workload[1]


def test_observer_blind_is_shown_not_healthy() -> None:
    s = Story(RUN)
    s.snapshot(1)
    s.snapshot(2, ok=False)
    lines = render_text(fold(s.events), (80, 24), s.t(3))
    cluster = [row for row in panel_rows(lines, "Cluster") if row]
    assert cluster[0] == "OBSERVER BLIND: connection refused"
    assert [row.split()[:2] for row in cluster[1:3]] == [["rl-1", "?"], ["rl-2", "?"]]  # then "… +2 more"
    assert not any("UP" in row for row in cluster)
    assert "redis    ?    stale: observer blind" in plain(render_text(fold(s.events), (200, 60), s.t(3)))


def test_a_long_agent_timeline_shows_its_newest_steps() -> None:
    s = Story(RUN)
    s.opened(0)
    for i in range(40):
        s.ticket(1 + i, AgentThought(ticket_id="tk-1", text=f"step number {i}"))
    text = plain(render_text(fold(s.events), (80, 24), s.t(50)))
    assert "step number 39" in text
    assert "step number 0\n" not in text
    assert "earlier" in text


def test_long_narration_is_cut_but_title_and_hint_stay() -> None:
    s = Story(RUN)
    s.chapter(1, 1, "Healthy baseline", narration="word " * 200, advance="press space", timeout_s=60)
    view = fold(s.events)
    lines = narration_lines(view, s.t(11), width=78, max_lines=3)
    assert len(lines) == 3
    assert narration_title(view) == "2/7 · Healthy baseline"
    assert lines[1].endswith("…")
    assert lines[2] == [("hint", "▶ press space"), ("warn", "  next in 50s")]
    text = plain(render_text(view, (80, 24), s.t(11)))
    assert "─ 2/7 · Healthy baseline ─" in text
    assert "▶ press space  next in 50s" in text


def test_past_its_timeout_a_chapter_says_it_waits_for_the_agent_at_work() -> None:
    s = Story(RUN)
    s.chapter(1, 4, "Remediation", narration="The agent works.", advance="waits for ticket.resolved", timeout_s=5)
    s.opened(2)
    s.ticket(3, TicketClaimed(ticket_id="tk-1", agent="agent-1", policy="claude", lease_until=s.t(200)))
    view = fold(s.events)
    assert narration_lines(view, s.t(4), width=78, max_lines=3)[-1][-1] == ("warn", "  next in 2.0s")
    assert narration_lines(view, s.t(60), width=78, max_lines=3)[-1][-1] == ("warn", "  waiting for the agent")
    s.ticket(61, TicketEscalated(ticket_id="tk-1", reason="gave up", agent="agent-1"))
    view = fold(s.events)
    assert narration_lines(view, s.t(62), width=78, max_lines=3)[-1][-1] == ("warn", "  next in 0.0s")


def test_narration_is_reflowed_into_paragraphs() -> None:
    s = Story(RUN)
    s.chapter(1, 0, "Welcome", narration="Three nodes share\none Redis.\n\nToday: a fault.\n", advance="")
    assert narration_lines(fold(s.events), s.t(2), width=80, max_lines=5) == [
        "Three nodes share one Redis.", "", "Today: a fault."]


def test_replay_footer_has_no_next_chapter_key() -> None:
    story = node_kill_story(RUN)
    lines = render_text(fold(story.events), (80, 24), story.t(15), live=False, can_advance=False,
                        status="hello")
    assert "replay" in lines[-1] and "space" not in lines[-1] and "hello" in lines[-1]


def test_the_approval_panel_writes_the_call_as_the_agent_timeline_does_but_in_full() -> None:
    s = Story(RUN)
    s.opened(1)
    s.ticket(2, TicketClaimed(ticket_id="tk-1", agent="agent-1", policy="claude", lease_until=s.t(60)))
    args = {"node": "rl-2", "force": True, "note": "x" * 90}
    s.ticket(3, TicketActionRequested(ticket_id="tk-1", action_id="a9", tool="restart_node", args=args,
                                      awaiting_approval=True))
    view = fold(s.events)
    (line,) = approval_lines(view)
    full = "restart_node(node='rl-2', force=true, note='" + "x" * 90 + "')"
    assert line == ("warn", f"  APPROVE? tk-1 {full} [a9]")  # a human approving reads every argument
    asked = view.ticket_steps("tk-1")[-1].text
    assert asked.startswith(f"APPROVAL NEEDED: {full[:60]}") and asked.endswith("… [a9]")  # a line: abridged


def footer_text(view: LabView, cols: int, **kwargs: Any) -> str:
    keys, _ = footer_parts(view, live=True, can_advance=True, cols=cols, can_decide=True, **kwargs)
    return "".join(text for _, text in keys)


def test_footer_with_approval_keys_keeps_quit_and_the_status_at_80_columns() -> None:
    s = Story(RUN)
    s.opened(1)
    s.ticket(2, TicketClaimed(ticket_id="tk-1", agent="agent-1", policy="claude", lease_until=s.t(60)))
    s.ticket(3, TicketActionRequested(ticket_id="tk-1", action_id="a9", tool="restart_node", args={"node": "rl-2"},
                                      awaiting_approval=True))
    view = fold(s.events)
    idle = footer_text(view, 80, status="")
    assert all(hint in idle for hint in ("approve", "reject…", "tab", "space/→", "q  quit"))
    assert len(idle) + len("live ") <= 80
    busy = footer_text(view, 80, status="rejected a9")  # the least needed hint makes room for the status
    assert busy == " a  approve   r  reject…   tab  next   q  quit  │ rejected a9"
    failed = footer_text(view, 80, status="a9: ticket tk-1 is escalated: cannot reject its actions")
    assert failed == " q  quit  │ a9: ticket tk-1 is escalated: cannot reject its actions"
    wide = footer_text(view, 200, status="rejected a9")
    assert all(hint in wide for hint in ("approve", "reject…", "tab", "space/→  next chapter", "q  quit"))
    assert footer_text(view, 80, status="", prompting=True) == " enter  reject   esc  cancel "


def test_formatting_helpers() -> None:
    assert [fmt_duration(x) for x in (None, -1, 0.44, 12.9, 65, 3 * 3600 + 120)] == [
        "-", "0.0s", "0.4s", "12s", "1m05s", "3h02m"]
    assert fmt_clock(75) == "01:15" and fmt_clock(3725) == "1:02:05"


def test_chaos_panel_marks_a_fault_not_yet_effective() -> None:
    s = Story(RUN)
    s.fault(1, ttl_s=90)
    lines = chaos_lines(fold(s.events), s.t(31))
    assert "".join(part if isinstance(part, str) else part[1] for part in lines[0]) == (
        "node_kill rl-2 TTL 1m00s (pending)")
    two = chaos_lines(fold(s.events), s.t(31), width=20)
    assert ["".join(p if isinstance(p, str) else p[1] for p in line) for line in two] == [
        "node_kill rl-2", "  TTL 1m00s (pending)"]


def test_build_screen_is_a_box_widget_of_the_requested_size() -> None:
    _, view, now = mid_story()
    for size in SIZES:
        canvas = build_screen(view, size, now).render(size)
        assert (canvas.cols(), canvas.rows()) == size


# -- the app, on a headless screen ---------------------------------------------------------------


async def test_app_keys_redraws_and_quit() -> None:
    _, _, now = mid_story()
    nexts: list[int] = []
    pressed = asyncio.Event()

    async def on_next() -> None:
        nexts.append(1)
        pressed.set()

    screen = WatchedScreen((80, 24))
    app = ConsoleApp(LabView(RUN), on_next, screen=screen, clock=lambda: now, tick_s=0)
    task = asyncio.create_task(app.run())
    await screen.wait_until_started()
    assert "Waiting for events" in screen.text
    for event in node_kill_story(RUN).events[:24]:
        app.view.apply(event)
        app.invalidate()
    await screen.wait_for_text("tk-1 remediating")
    assert app.redraws == 1  # 24 invalidations coalesced into one redraw
    screen.press(" ")
    await asyncio.wait_for(pressed.wait(), 5)
    screen.press("right")
    await wait_until(lambda: len(nexts) == 2, timeout=5, interval=0.01, what="→ asks for the next chapter too")
    screen.press("q")
    await asyncio.wait_for(task, 5)
    assert app.next_requests == 2
    assert app.main_loop is None


async def test_a_tick_supersedes_the_pending_redraw() -> None:
    screen = WatchedScreen((80, 24))
    app = ConsoleApp(LabView(RUN), None, screen=screen, tick_s=0, redraw_delay_s=60)
    task = asyncio.create_task(app.run())
    await screen.wait_until_started()
    app.invalidate()
    app.invalidate()
    assert app.redraw_pending
    app._on_tick()  # what the 1 s tick does: draw now, and drop the scheduled redraw
    assert not app.redraw_pending
    assert app.redraws == 1
    app.invalidate()
    assert app.redraw_pending
    app.quit()
    await asyncio.wait_for(task, 5)
    assert not app.redraw_pending


async def test_app_shows_a_failed_next_request_in_the_footer() -> None:
    async def on_next() -> None:
        raise TimeoutError("no director")

    screen = WatchedScreen((80, 24))
    app = ConsoleApp(LabView(RUN), on_next, screen=screen, tick_s=0)
    task = asyncio.create_task(app.run())
    await screen.wait_until_started()
    screen.press(" ")
    await screen.wait_for_text("next failed: TimeoutError no director")
    app.quit()
    await asyncio.wait_for(task, 5)


async def test_app_ticks_countdowns_while_live() -> None:
    story, view, _ = mid_story()
    times = iter([story.t(12.0 + 0.5 * i) for i in range(1000)])
    screen = WatchedScreen((80, 24))
    app = ConsoleApp(view, None, screen=screen, clock=lambda: next(times), tick_s=0.01)
    task = asyncio.create_task(app.run())
    await screen.wait_for_text("next in 22s")
    await screen.wait_for_text("next in 21s")
    assert "space" not in screen.last_text[-1]
    app.quit()
    await asyncio.wait_for(task, 5)


def test_urwid_is_the_expected_major_version() -> None:
    assert int(urwid.__version__.split(".")[0]) >= 3


def test_a_subject_whose_rows_fail_is_drawn_with_the_neutral_rows() -> None:
    from subjects.contract import NeutralRows, Picture, Row

    class Broken(NeutralRows):
        def cluster(self, picture: Picture) -> list[Row]:
            raise KeyError("a plug-in bug")

        def workload(self, picture: Picture, limit: int | None = None) -> list[Row]:
            raise KeyError("another one")

    s = Story(RUN)
    s.snapshot(1, down=("rl-2",))
    s.workload(1.5, {"user:1": (100, 10, 0)})
    view = fold(s.events)

    def flat(markup: Any) -> str:
        return markup if isinstance(markup, str) else markup[1] if isinstance(markup, tuple) else "".join(
            flat(m) for m in markup)

    lines = [flat(line) for line in cluster_lines(view, s.t(2), rows=Broken())]
    assert lines[1].startswith("rl-2") and "DOWN" in lines[1]
    assert flat(workload_lines(view, s.t(2), rows=Broken())[0]).startswith("user:1")

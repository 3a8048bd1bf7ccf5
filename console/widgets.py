"""Panels of the console, rendered from a :class:`~projections.lab_view.LabView`.

Two layers:

- ``*_lines`` / ``*_parts`` / ``*_title`` functions are pure (no I/O, no clock:
  ``now`` is always passed in): they turn the view into lines of urwid text
  markup, one screen row each (long lines end in an ellipsis, never wrap);
- :class:`ScreenLayout` holds the urwid widgets for one terminal size and
  :meth:`ScreenLayout.update` fills them from a view. Below 120x40 it uses
  the compact layout (80x24 is its design size: panels titled by a rule, no
  borders); from 120x40 up (200x60 is its design size) the wide layout with
  boxed panels and a services panel. Each panel has a fixed number of rows and
  shows what fits: lists are cut with a "+N more" line, the agent timeline
  shows its newest steps. Below 40x10 only a "terminal too small" notice shows.
  :func:`build_screen` / :func:`render_text` do the same in one call (tests).

:class:`LabScreen` is the widget the app shows: one layout per size, updated
when the view's ``version``, the displayed second or the status line changed,
and only lines whose text changed are re-set (so cached canvases are reused).

:class:`RejectPrompt` is the small box where the human types why a pending
action is rejected; :func:`prompt_overlay` lays it over the screen. It takes
every key while it is open: ``enter`` submits, ``esc`` cancels, the rest edit.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

import urwid

from console.subject_rows import cluster_rows, picture, row_markup, rows_for, workload_rows
from projections.lab_view import LabView, Step, fmt_tokens
from projections.tickets.state import ACTIVE, Action, TicketState, TicketStatus
from projections.timeline import Chapter
from subjects.contract import NeutralRows, fmt_duration

Markup = Any  # urwid text markup: str | tuple[attr, Markup] | list[Markup]

WIDE_MIN_COLS = 120
WIDE_MIN_ROWS = 40
MIN_COLS = 40
MIN_ROWS = 10

PALETTE: list[tuple[str, ...]] = [
    ("header", "white,bold", "dark blue"),
    ("header_dim", "light gray", "dark blue"),
    ("footer", "black", "light gray"),
    ("key", "white,bold", "dark cyan"),
    ("title", "white,bold", ""),
    ("rule", "dark cyan", ""),
    ("chapter", "yellow,bold", ""),
    ("hint", "light cyan", ""),
    ("good", "light green", ""),
    ("bad", "light red,bold", ""),
    ("warn", "yellow", ""),
    ("dim", "dark gray", ""),
    ("prompt", "white", "dark blue"),
    ("prompt_edit", "black", "light gray"),
]


# -- formatting ---------------------------------------------------------------------------------


def fmt_clock(seconds: float) -> str:
    """Elapsed time as ``mm:ss`` (``h:mm:ss`` past an hour)."""
    whole = int(max(0.0, seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _since(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


STATUS_ATTR: dict[str, str] = {
    TicketStatus.OPEN: "warn", TicketStatus.CLAIMED: "hint", TicketStatus.DIAGNOSED: "hint",
    TicketStatus.REMEDIATING: "hint", TicketStatus.VERIFIED: "good", TicketStatus.RESOLVED: "good",
    TicketStatus.ESCALATED: "bad",
}


# -- panel contents (pure) ----------------------------------------------------------------------


def header_parts(view: LabView, now: datetime, cols: int = 200) -> tuple[Markup, str]:
    """(left markup, right text) of the header row: chapter i/N, run, scenario | state, elapsed.

    The product name is dropped below 100 columns so the facts fit at 80.
    """
    tl = view.timeline
    sep = ("header_dim", " │ ")
    parts: list[Markup] = [("header", " Operator Lab"), sep] if cols >= 100 else [("header", " ")]
    ch = tl.chapter
    if ch is not None:
        parts += [("header", f"chapter {ch.number}/{ch.total}"), sep]
    parts += [("header", view.run or "no run"), sep, ("header", tl.scenario or "scenario ?")]
    state = "finished" if tl.finished else ("live" if view.events else "waiting")
    right = f"{state} {fmt_clock(tl.elapsed_s(now))} "
    return parts, right


def narration_title(view: LabView) -> str:
    """Title of the narration panel: ``i/N · chapter title`` (or a plain label before any chapter)."""
    ch = view.timeline.chapter
    return "Narration" if ch is None else f"{ch.number}/{ch.total} · {ch.title}"


def narration_lines(view: LabView, now: datetime, width: int, max_lines: int) -> list[Markup]:
    """The chapter's narration reflowed to ``width``, then the advance hint/countdown.

    Single newlines in the narration are spaces; blank lines separate
    paragraphs. Never more than ``max_lines`` lines: the narration is cut (its
    last line ends in an ellipsis) so that the hint always shows.
    """
    ch = view.timeline.chapter
    width = max(1, width)
    if max_lines <= 0:
        return []
    if ch is None:
        text = ("Waiting for the director to start the scenario…" if view.events
                else f"Waiting for events of run {view.run or '?'}…")
        return [("dim", text)]
    agent_at_work = any(t.status in ACTIVE for t in view.tickets.values())
    hint = _advance_hint(ch, now, agent_at_work)
    body_room = max(0, max_lines - (1 if hint else 0))
    body: list[str] = []
    for para in re.split(r"\n\s*\n", ch.narration.strip()):
        if body:
            body.append("")
        body.extend(textwrap.wrap(" ".join(para.split()), width))
    if len(body) > body_room:
        body = body[:body_room]
        if body:
            last = body[-1]
            body[-1] = last[: width - 1] + "…" if len(last) >= width else last + "…"
    lines: list[Markup] = list(body)
    if hint:
        lines.append(hint)
    return lines[:max_lines]


def _advance_hint(ch: Chapter, now: datetime, agent_at_work: bool = False) -> Markup | None:
    bits: list[Markup] = []
    if ch.finished_at is not None:
        bits.append(("dim", f"chapter finished ({ch.finish_reason})"))
    else:
        if ch.advance:
            bits.append(("hint", f"▶ {ch.advance}"))
        remaining = ch.remaining_s(now)
        if remaining is not None:
            # past its timeout a chapter waits while an agent holds a ticket (the director's rule)
            wait = "waiting for the agent" if remaining <= 0 and agent_at_work else f"next in {fmt_duration(remaining)}"
            bits.append(("warn", f"{'  ' if bits else ''}{wait}"))
    return bits or None


def cluster_lines(view: LabView, now: datetime, rows: NeutralRows | None = None) -> list[Markup]:
    """The subject's cluster rows (nodes, components); a blind observer is said first."""
    cl = view.cluster
    lines: list[Markup] = []
    if cl.blind:
        lines.append(("bad", f"OBSERVER BLIND: {cl.blind_error}"))
    rows = rows or rows_for(view)
    return lines + [row_markup(r) for r in cluster_rows(rows, picture(view, now))]


def workload_lines(view: LabView, now: datetime, limit: int | None = None,
                   rows: NeutralRows | None = None) -> list[Markup]:
    """The subject's workload rows (e.g. the busiest keys against their limits), at most ``limit``."""
    rows = rows or rows_for(view)
    return [row_markup(r) for r in workload_rows(rows, picture(view, now), limit)]


def chaos_lines(view: LabView, now: datetime, width: int | None = None) -> list[Markup]:
    """Active faults with TTL remaining; the last finished fault when none is active.

    A fault takes one line (``kind target TTL 1m57s``), or two when that is
    wider than ``width``, so the TTL is never cut off.
    """
    tl = view.timeline
    active = tl.active_faults
    lines: list[Markup] = []
    for f in active:
        kind_attr = "bad" if f.status == "effective" else "warn"
        what = f"{f.kind} {f.target or '?'}"
        ttl = f"TTL {fmt_duration(f.ttl_remaining_s(now))}"
        pending = "" if f.status == "effective" else " (pending)"
        if width is not None and len(what) + 1 + len(ttl) + len(pending) > width:
            lines.append([(kind_attr, f.kind), f" {f.target or '?'}"])
            lines.append(["  ", ("warn", ttl), pending])
        else:
            lines.append([(kind_attr, f.kind), f" {f.target or '?'} ", ("warn", ttl), pending])
        if f.error:
            lines.append(("bad", f"  {f.error}"))
    if active:
        return lines
    lines.append(("good", "no active faults"))
    done = [f for f in tl.faults.values() if not f.active]
    if done:
        last = done[-1]
        if last.status == "reverted":
            lines.append(("dim", f"last: {last.kind} {last.target or '?'}"))
            lines.append(("dim", f"  reverted ({last.revert_reason})"))
        elif last.status == "failed":
            lines.append(("bad", f"last: {last.kind} failed: {last.error}"))
        else:
            lines.append(("dim", f"pending: {last.kind} {last.target or '?'} requested"))
    return lines


def ticket_lines(view: LabView, now: datetime, room: int | None = None) -> list[Markup]:
    """Tickets newest first: id, status, invariant/entity, age (or time to close).

    With ``room``, at most that many lines (the last one then says how many more).
    """
    tickets = view.tickets_newest_first()
    if not tickets:
        violations = view.timeline.violations
        if violations:
            return [("warn", f"{len(violations)} violation(s), no ticket yet")]
        return [("dim", "no tickets")]
    return _fit_items(tickets, room, lambda t: _ticket_line(t, now), tail=False)


def _fit_items(items: Sequence[Any], room: int | None, fmt: Callable[[Any], Markup], *, tail: bool
               ) -> list[Markup]:
    """Like :func:`_fit` over ``map(fmt, items)``, formatting only the items that show."""
    if room is None or len(items) <= room:
        return [fmt(item) for item in items]
    if room <= 0:
        return []
    note = _cut_note(len(items) - (room - 1), tail)
    if room == 1:
        return [note]
    if tail:
        return [note, *map(fmt, islice(items, len(items) - (room - 1), None))]
    return [*map(fmt, islice(items, room - 1)), note]


def _ticket_line(t: TicketState, now: datetime) -> Markup:
    closed = t.status in (TicketStatus.RESOLVED, TicketStatus.ESCALATED)
    age = (t.updated_at - t.opened_at).total_seconds() if closed else _since(now, t.opened_at)
    status = str(t.status)
    if t.status == TicketStatus.RESOLVED and t.resolved_by == "self-healed":
        status = "healed"
    return [f"{t.ticket_id} ", (STATUS_ATTR.get(t.status, "dim"), f"{status:<11}"),
            f"{fmt_duration(age):>6} ", f"{t.invariant} {t.entity}"]


def agent_title(view: LabView) -> str:
    """Title of the agent timeline: the current ticket, who holds it, model tokens and cost so far."""
    t = view.current_ticket()
    if t is None:
        return "Agent"
    who = f" · {t.claimed_by}" if t.claimed_by else ""
    usage = view.ticket_usage(t.ticket_id)
    spent = f" · {fmt_tokens(usage.tokens)} tok · ${usage.cost_usd:.4f}" if usage is not None else ""
    return f"Agent · {t.ticket_id}{who} · {t.status}{spent}"


THOUGHT_ROWS = 3


def agent_lines(view: LabView, room: int | None = None, width: int | None = None,
                selected: str | None = None) -> list[Markup]:
    """The current ticket's conversation, oldest first (the newest ``room`` lines if given), then the
    actions waiting for approval on any ticket (``selected`` action id highlighted).

    The model's reasoning text takes up to three rows (wrapped to ``width``); every other step one row.
    """
    pending = approval_lines(view, selected)
    t = view.current_ticket()
    if t is None:
        return [("dim", "no agent activity yet"), *pending]
    steps = view.ticket_steps(t.ticket_id)
    if not steps:
        return [("dim", f"{t.ticket_id}: waiting for an agent to claim it"), *pending]
    body_room = None if room is None else max(1, room - len(pending))
    lines: list[Markup] = []
    shown = 0
    for step in reversed(steps):  # format only what can show: the newest steps
        rows = _step_lines(step, width)
        if body_room is not None and len(lines) + len(rows) > body_room:
            break
        lines[:0] = rows
        shown += 1
    if body_room is not None and shown < len(steps):
        keep = body_room - 1
        dropped = 1 if keep < len(lines) else 0
        lines = [_cut_note(len(steps) - shown + dropped, True), *(lines[len(lines) - keep:] if keep > 0 else [])]
    return [*lines, *pending]


def approval_lines(view: LabView, selected: str | None = None) -> list[Markup]:
    """Actions waiting for a human: ``a`` approves the highlighted one, ``r`` rejects it, tab moves."""
    out: list[Markup] = []
    for ticket, action in view.pending_approvals():
        mark = "▶ " if action.action_id == selected else "  "
        attr = "key" if action.action_id == selected else "warn"
        out.append((attr, f"{mark}APPROVE? {ticket.ticket_id} {action_call(action)} [{action.action_id}]"))
    return out


def action_call(action: Action) -> str:
    """A requested action as a call: ``restart_node(node='rl-2')``."""
    args = ", ".join(f"{k}={v!r}" for k, v in action.args.items())
    return f"{action.tool}({args})"


def _step_lines(s: Step, width: int | None) -> list[Markup]:
    attr = "good" if s.ok is True else ("bad" if s.ok is False else None)
    if s.kind in ("claimed", "diagnosed", "opened"):
        attr = attr or "title"
    elif s.kind == "approval_requested":
        attr = "warn"
    elif s.kind in ("llm_response", "session_started", "session_finished"):
        attr = attr or "dim"
    stamp = s.at.strftime("%H:%M:%S")
    if s.kind == "thought" and width is not None and width > 20:
        rows = textwrap.wrap(s.text, max(10, width - 9)) or [""]
        if len(rows) > THOUGHT_ROWS:
            rows = rows[:THOUGHT_ROWS]
            rows[-1] = rows[-1][: max(0, width - 10)] + "…"
        return [[("dim", f"{stamp} "), ("hint", rows[0])], *[[("dim", " " * 9), ("hint", r)] for r in rows[1:]]]
    if s.kind == "thought":
        attr = "hint"
    return [[("dim", f"{stamp} "), (attr, s.text) if attr else s.text]]


def _step_line(s: Step) -> Markup:
    return _step_lines(s, None)[0]


def services_lines(view: LabView, now: datetime) -> list[Markup]:
    """Services seen on the bus: alive or not, uptime since start."""
    rows = view.cluster.service_rows()
    if not rows:
        return [("dim", "no service heard yet")]
    out: list[Markup] = []
    for r in rows:
        alive = r.alive(now)
        state: Markup = ("good", "alive") if alive else ("bad", "stopping" if r.stopping else "silent")
        out.append([f"{r.service:<10.10} ", state, ("dim", f"  {r.instance} pid {r.pid or '?'}")])
    return out


def footer_parts(view: LabView, *, live: bool, can_advance: bool, status: str,
                 cols: int = 200, can_decide: bool = False, prompting: bool = False) -> tuple[Markup, str]:
    """(left markup, right text) of the footer: keys and status | mode and event count.

    While the reject prompt is open (``prompting``) the keys are the prompt's: enter, esc. The
    approval keys take room: with them, below 100 columns the footer is laid out as narrow. When
    the keys and the status do not fit in ``cols``, the least needed key hints are left out
    (next chapter, then tab, then r, then a; quit and the prompt's keys always stay).
    """
    deciding = not prompting and can_decide and bool(view.pending_approvals())
    narrow = cols < (100 if deciding else 80)
    groups: list[tuple[int, list[Markup]]] = []  # (priority: 0 is always shown, key hint), in display order
    if prompting:
        groups += [(0, [("key", " enter "), ("footer", " reject  ")]), (0, [("key", " esc "), ("footer", " cancel ")])]
    elif deciding:
        groups += [(1, [("key", " a "), ("footer", " approve  ")]), (2, [("key", " r "), ("footer", " reject…  ")]),
                   (3, [("key", " tab "), ("footer", " next  ")])]
    if can_advance and not prompting:
        groups.append((4, [("key", " space/→ "), ("footer", " next  " if narrow else " next chapter  ")]))
    if not prompting:
        groups.append((0, [("key", " q "), ("footer", " quit ")]))
    mode = "live" if live else "replay"
    if status or narrow:  # make room for the keys and a transient message
        right = f"{mode} "
    else:
        extra = f" · {view.rejected} rejected" if view.rejected else ""
        right = f"{mode} · {view.events} events{extra} "
    tail: list[Markup] = [("footer", f" │ {status}")] if status else []
    room = cols - len(right) - _markup_width(tail)
    shown: set[int] = set()
    for i in sorted(range(len(groups)), key=lambda i: groups[i][0]):
        width = _markup_width(groups[i][1])
        if groups[i][0] == 0 or width <= room:
            shown.add(i)
            room -= width
    keys = [part for i, (_, parts) in enumerate(groups) if i in shown for part in parts]
    return keys + tail, right


def _markup_width(parts: Sequence[tuple[str, str]]) -> int:
    return sum(len(text) for _, text in parts)


# -- layout -------------------------------------------------------------------------------------


def _cut_note(hidden: int, tail: bool) -> Markup:
    return ("dim", f"… {hidden} earlier" if tail else f"… +{hidden} more")


def _fit(lines: Sequence[Markup], room: int, tail: bool) -> list[Markup]:
    """At most ``room`` lines; a cut list says how many it left out."""
    if room <= 0:
        return []
    if len(lines) <= room:
        return list(lines)
    note = _cut_note(len(lines) - (room - 1), tail)
    if room == 1:
        return [note]
    return [note, *lines[-(room - 1):]] if tail else [*lines[: room - 1], note]


class PanelSlot:
    """A panel of fixed height: a title and up to ``room`` one-row lines.

    The urwid widgets are built once; the body is one ``Text`` (long lines end
    in an ellipsis) re-set only when a line changed, so an unchanged panel keeps
    its cached canvas and a redraw costs little more than what changed.
    """

    def __init__(self, rows: int, *, boxed: bool, tail: bool = False, title_attr: str = "title") -> None:
        self.rows = max(0, rows)
        self.title_attr = title_attr
        self.boxed = boxed
        self.tail = tail
        self.room = max(0, self.rows - (2 if boxed else 1))
        self._text = urwid.Text("", wrap="ellipsis")
        self._shown: list[Markup] = []
        self._title: str | None = None
        body = urwid.Filler(self._text, valign="top")
        if boxed:
            self._box = urwid.LineBox(body, title="", title_align="left", title_attr=title_attr)
            self.widget: urwid.Widget = self._box
        else:
            self._rule_title = urwid.Text("", wrap="clip")
            rule = urwid.AttrMap(urwid.Columns([("pack", self._rule_title), urwid.Divider("─")]), "rule")
            self.widget = urwid.Pile([(1, urwid.Filler(rule)), body]) if self.room else urwid.Filler(rule)

    def show(self, title: str, lines: Sequence[Markup]) -> None:
        if title != self._title:
            self._title = title
            if self.boxed:
                self._box.set_title(title)
            else:
                self._rule_title.set_text([("rule", "─ "), (self.title_attr, title), " "])
        fitted = _fit(lines, self.room, self.tail)
        if fitted != self._shown:
            self._shown = fitted
            markup: list[Markup] = []
            for i, line in enumerate(fitted):
                if i:
                    markup.append("\n")
                markup.append(line)
            self._text.set_text(markup or "")


class _Bar:
    """A one-row bar: left markup (cut with an ellipsis) and a right-aligned text."""

    def __init__(self, attr: str) -> None:
        self._left = urwid.Text("", wrap="ellipsis")
        self._right = urwid.Text("", wrap="clip")
        self._shown: tuple[Markup, str] | None = None
        self.widget = urwid.AttrMap(urwid.Columns([self._left, ("pack", self._right)]), attr)

    def show(self, parts: tuple[Markup, str]) -> None:
        if parts != self._shown:
            self._shown = parts
            self._left.set_text(parts[0])
            self._right.set_text(parts[1])


def _pile(items: list[tuple[int, urwid.Widget]]) -> urwid.Widget:
    """Stack box widgets with exact heights (zero-height ones are dropped)."""
    kept = [("given", h, w) for h, w in items if h > 0]
    return urwid.Pile(kept) if kept else urwid.SolidFill(" ")


def _split_rows(total: int, wants: list[int]) -> list[int]:
    """Give each part what it wants, in order, while rows last; the last part takes the rest."""
    out: list[int] = []
    left = total
    for want in wants[:-1]:
        take = max(0, min(want, left))
        out.append(take)
        left -= take
    out.append(max(0, left))
    return out


class ScreenLayout:
    """The widgets of the whole screen for one size; :meth:`update` refreshes them from a view.

    ``kind`` is ``"wide"`` from 120x40, ``"compact"`` from 40x10, else ``"tiny"``.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        cols, rows = size
        self.size = size
        self.header = _Bar("header")
        self.footer = _Bar("footer")
        self.slots: dict[str, PanelSlot] = {}
        if cols < MIN_COLS or rows < MIN_ROWS:
            self.kind = "tiny"
            self._tiny = urwid.Text("", wrap="ellipsis")
            self.widget: urwid.Widget = urwid.Filler(self._tiny, valign="top")
            return
        body_rows = rows - 2
        if cols >= WIDE_MIN_COLS and rows >= WIDE_MIN_ROWS:
            self.kind = "wide"
            body = self._wide(cols, body_rows)
        else:
            self.kind = "compact"
            body = self._compact(cols, body_rows)
        self.widget = _pile([(1, self.header.widget), (body_rows, body), (1, self.footer.widget)])

    def _slot(self, name: str, rows: int, *, boxed: bool, tail: bool = False) -> urwid.Widget:
        attr = "chapter" if name == "narration" else "title"
        slot = self.slots[name] = PanelSlot(rows, boxed=boxed, tail=tail, title_attr=attr)
        return slot.widget

    def _compact(self, cols: int, rows: int) -> urwid.Widget:
        """80x24 design: narration, cluster|workload, chaos|tickets, agent timeline; rules, no borders."""
        wants = [6, 7, 5, 0] if rows >= 28 else [5, 5, 4, 0]
        narr_h, top_h, mid_h, agent_h = _split_rows(rows, wants)
        self.narration_width = cols
        half = (cols - 1) // 2
        left_mid = max(24, (cols - 1) // 3)
        self.chaos_width: int | None = left_mid
        top = urwid.Columns([(half, self._slot("cluster", top_h, boxed=False)),
                             self._slot("workload", top_h, boxed=False)], dividechars=1)
        mid = urwid.Columns([(left_mid, self._slot("chaos", mid_h, boxed=False)),
                             self._slot("tickets", mid_h, boxed=False)], dividechars=1)
        return _pile([(narr_h, self._slot("narration", narr_h, boxed=False)), (top_h, top), (mid_h, mid),
                      (agent_h, self._slot("agent", agent_h, boxed=False, tail=True))])

    def _wide(self, cols: int, rows: int) -> urwid.Widget:
        """200x60 design: boxed narration on top; cluster/workload/chaos/services left; tickets, agent right."""
        narr_h = 7
        main_h = rows - narr_h
        self.narration_width = cols - 2
        self.chaos_width = None
        left_w = max(50, min(80, cols * 2 // 5))
        cluster_h, workload_h, chaos_h, services_h = _split_rows(
            main_h, [max(7, main_h // 4), max(7, main_h // 4), max(6, main_h // 6), 0])
        tickets_h, agent_h = _split_rows(main_h, [max(8, main_h // 4), 0])
        left = _pile([
            (cluster_h, self._slot("cluster", cluster_h, boxed=True)),
            (workload_h, self._slot("workload", workload_h, boxed=True)),
            (chaos_h, self._slot("chaos", chaos_h, boxed=True)),
            (services_h, self._slot("services", services_h, boxed=True)),
        ])
        right = _pile([
            (tickets_h, self._slot("tickets", tickets_h, boxed=True)),
            (agent_h, self._slot("agent", agent_h, boxed=True, tail=True)),
        ])
        return _pile([(narr_h, self._slot("narration", narr_h, boxed=True)),
                      (main_h, urwid.Columns([(left_w, left), right]))])

    def update(self, view: LabView, now: datetime, *, live: bool = True, can_advance: bool = True,
               status: str = "", can_decide: bool = False, selected: str | None = None,
               prompting: bool = False) -> None:
        """Show ``view`` as of ``now``; only changed lines are re-set."""
        cols, rows = self.size
        if self.kind == "tiny":
            self._tiny.set_text(f"terminal too small ({cols}x{rows}); need at least 80x24")
            return
        self.header.show(header_parts(view, now, cols))
        self.footer.show(footer_parts(view, live=live, can_advance=can_advance, status=status, cols=cols,
                                      can_decide=can_decide, prompting=prompting))
        slots = self.slots
        narration = slots["narration"]
        narration.show(narration_title(view), narration_lines(view, now, self.narration_width, narration.room))
        rows = rows_for(view)
        slots["cluster"].show(rows.cluster_title, cluster_lines(view, now, rows))
        slots["workload"].show(rows.workload_title if self.kind == "wide" else "Workload",
                               workload_lines(view, now, limit=max(1, slots["workload"].room), rows=rows))
        slots["chaos"].show("Chaos", chaos_lines(view, now, self.chaos_width))
        slots["tickets"].show("Tickets", ticket_lines(view, now, slots["tickets"].room))
        agent = slots["agent"]
        agent_width = cols - 2 if self.kind == "compact" else cols - max(50, min(80, cols * 2 // 5)) - 2
        agent.show(agent_title(view), agent_lines(view, agent.room, agent_width, selected))
        if "services" in slots:
            slots["services"].show("Services", services_lines(view, now))


def build_screen(view: LabView, size: tuple[int, int], now: datetime, *, live: bool = True,
                 can_advance: bool = True, status: str = "") -> urwid.Widget:
    """The whole screen for ``size`` (cols, rows) as a fresh box widget showing ``view`` at ``now``."""
    layout = ScreenLayout(size)
    layout.update(view, now, live=live, can_advance=can_advance, status=status)
    return layout.widget


def render_text(view: LabView, size: tuple[int, int], now: datetime, **kwargs: Any) -> list[str]:
    """The screen for ``size`` as text rows (what a test or a bench looks at)."""
    canvas = build_screen(view, size, now, **kwargs).render(size, focus=False)
    return [line.rstrip() for line in canvas.decoded_text]


# -- the live widget ----------------------------------------------------------------------------


class LabScreen(urwid.Widget):
    """Box widget showing a LabView; updates only when something it shows may have changed.

    ``clock`` gives "now" for ages and countdowns (wall clock live, the log's
    time in replay). Call :meth:`refresh` after the view changed or the clock
    ticked: it invalidates urwid's canvas cache so the next draw re-renders.
    The layout is built once per terminal size and kept; an update re-sets only
    the lines whose text changed, when the view's ``version``, the displayed
    second or the status line moved.
    """

    _sizing = frozenset([urwid.Sizing.BOX])
    _selectable = False

    def __init__(self, view: LabView, clock: Callable[[], datetime], *, live: bool = True,
                 can_advance: bool = True) -> None:
        super().__init__()
        self.view = view
        self.clock = clock
        self.live = live
        self.can_advance = can_advance
        self.status = ""
        self.can_decide = False
        self.selected: str | None = None  # the highlighted pending approval (action id)
        self.prompting = False  # the reject prompt is open: the footer shows its keys
        self.updates = 0
        self._layouts: dict[tuple[int, int], ScreenLayout] = {}
        self._keys: dict[tuple[int, int], tuple[Any, ...]] = {}

    def refresh(self) -> None:
        self._invalidate()

    def render(self, size: tuple[int, int], focus: bool = False) -> urwid.Canvas:  # type: ignore[override]
        now = self.clock()
        layout = self._layouts.get(size)
        if layout is None:
            if len(self._layouts) > 4:  # resizes: keep only a few layouts around
                self._layouts.clear()
                self._keys.clear()
            layout = self._layouts[size] = ScreenLayout(size)
        key = (self.view.version, int(now.timestamp()), self.status, self.selected, self.prompting)
        if self._keys.get(size) != key:
            layout.update(self.view, now, live=self.live, can_advance=self.can_advance, status=self.status,
                          can_decide=self.can_decide, selected=self.selected, prompting=self.prompting)
            self._keys[size] = key
            self.updates += 1
        return layout.widget.render(size, focus=focus)


# -- the reject prompt --------------------------------------------------------------------------

REASON_MAX_CHARS = 500


class RejectPrompt(urwid.WidgetWrap[urwid.AttrMap]):
    """A box asking why ``action`` (shown as ``what``) is rejected; it takes every key while open.

    ``enter`` calls ``on_submit`` with the typed reason (stripped; may be empty,
    the caller picks the default), ``esc`` calls ``on_cancel``. Any other key
    edits the reason, and is never passed on: typing ``q`` or ``a`` here neither
    quits nor approves.
    """

    def __init__(self, action_id: str, what: str, *, default_reason: str,
                 on_submit: Callable[[str], None], on_cancel: Callable[[], None]) -> None:
        self.action_id = action_id
        self.on_submit = on_submit
        self.on_cancel = on_cancel
        self.edit = urwid.Edit("reason: ", max_length=REASON_MAX_CHARS)
        body = urwid.Pile([
            urwid.Text(what, wrap="ellipsis"),
            urwid.AttrMap(self.edit, "prompt_edit"),
            urwid.Text(("dim", f"enter rejects · esc cancels · empty: {default_reason!r}"), wrap="ellipsis"),
        ], focus_item=1)
        box = urwid.LineBox(body, title=f"Reject {action_id}", title_align="left")
        super().__init__(urwid.AttrMap(box, "prompt"))

    @property
    def reason(self) -> str:
        return self.edit.edit_text.strip()

    def keypress(self, size: tuple[int], key: str) -> str | None:  # type: ignore[override]
        if key == "enter":
            self.on_submit(self.reason)
        elif key == "esc":
            self.on_cancel()
        else:
            super().keypress(size, key)  # unused keys are swallowed, never handled elsewhere
        return None


PROMPT_COLS = 72


def prompt_overlay(prompt: RejectPrompt, below: urwid.Widget) -> urwid.Overlay:
    """``prompt`` centred over ``below``: ``PROMPT_COLS`` wide (narrower on a narrower screen), as tall as it needs."""
    return urwid.Overlay(prompt, below, align="center", width=PROMPT_COLS, valign="middle", height="pack",
                         min_width=20)

"""Panels of the console, rendered from a :class:`~projections.lab_view.LabView`.

Two layers:

- ``*_lines`` / ``*_parts`` / ``*_title`` functions are pure (no I/O, no clock:
  ``now`` is always passed in): they turn the view into lines of urwid text
  markup, one screen row each (long lines end in an ellipsis, never wrap);
- :class:`ScreenLayout` holds the urwid widgets for one terminal size and
  :meth:`ScreenLayout.update` fills them from a view. Below 120x40 it uses
  the compact layout (80x24 is its design size: panels titled by a rule, no
  borders); from 120x40 up (200x60 is its design size) the wide layout with
  boxed panels and a services panel. Both show the incident timeline
  (:mod:`projections.incident`: one moment a line when wide, flowed into two
  lines at 80x24). A chapter about incident stages (``Chapter.about``) tells
  their facts first in the narration panel and highlights (``focus``) the lines
  it talks about: its fault (injection), its ticket (detection, verification),
  the agent steps and timeline moments of its stages. Each panel has a fixed number of rows and
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
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import urwid

from console.replay import ReplayStatus
from console.subject_rows import cluster_rows, picture, row_markup, rows_for, workload_rows
from projections.cluster import ServiceRow
from projections.incident import STAGES, Fact, Incident, waiting_facts
from projections.lab_view import LabView, Step, fmt_tokens
from projections.timeline import Chapter
from subjects.contract import NeutralRows, fmt_duration
from tickets.state import ACTIVE, Action, TicketState, TicketStatus

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
    ("focus", "black", "yellow"),  # a line the showing chapter talks about
    ("focus_bad", "dark red,bold", "yellow"),  # ... telling a failure
    ("fact", "white,bold", ""),  # a fact of the chapter's incident stage, from the log
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


def header_parts(view: LabView, now: datetime, cols: int = 200, replay: ReplayStatus | None = None
                 ) -> tuple[Markup, str]:
    """(left markup, right text) of the header row: chapter i/N, run, scenario | state, elapsed.

    The product name is dropped below 100 columns so the facts fit at 80. In a replay the state is
    the replay's position, speed and PAUSED or END (:meth:`~console.replay.ReplayStatus.label`).
    """
    tl = view.timeline
    sep = ("header_dim", " │ ")
    parts: list[Markup] = [("header", " Operator Lab"), sep] if cols >= 100 else [("header", " ")]
    ch = tl.chapter
    if ch is not None:
        parts += [("header", f"chapter {ch.number}/{ch.total}"), sep]
    parts += [("header", view.run or "no run"), sep, ("header", tl.scenario or "scenario ?")]
    state = "finished" if tl.finished else ("live" if view.events else "waiting")
    if replay is not None:
        state = replay.label(compact=cols < 100)
    right = f"{state} {fmt_clock(tl.elapsed_s(now))} "
    return parts, right


def narration_title(view: LabView) -> str:
    """Title of the narration panel: ``i/N · chapter title`` (or a plain label before any chapter)."""
    ch = view.timeline.chapter
    return "Narration" if ch is None else f"{ch.number}/{ch.total} · {ch.title}"


def narration_lines(view: LabView, now: datetime, width: int, max_lines: int) -> list[Markup]:
    """The chapter's facts, its narration reflowed to ``width``, then the advance hint/countdown.

    A chapter about incident stages (``Chapter.about``) first tells their facts
    from the log (:func:`chapter_facts`): what happened and when, or what the
    stage still waits for. Single newlines in the narration are spaces; blank
    lines separate paragraphs. Never more than ``max_lines`` lines: the facts
    come first, the narration is cut (its last line ends in an ellipsis) so that
    the hint always shows.
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
    facts = [_fact_line(f) for f in chapter_facts(view)][:body_room]
    body_room -= len(facts)
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
    lines: list[Markup] = [*facts, *body]
    if hint:
        lines.append(hint)
    return lines[:max_lines]


def chapter_facts(view: LabView) -> list[Fact]:
    """The facts of the showing chapter's incident stages, in stage order (none without ``about``)."""
    ch = view.timeline.chapter
    if ch is None or not ch.about:
        return []
    incident = view.incident.current()
    out: list[Fact] = []
    for stage in STAGES:
        if stage in ch.about:
            out.extend(incident.facts(stage) if incident is not None else waiting_facts(stage))
    return out


def _fact_line(fact: Fact) -> Markup:
    return [("fact", "● "), ("fact", fact.text)] if fact.done else [("warn", "… "), ("warn", fact.text)]


# the agent timeline's step kinds (projections.lab_view.Step.kind) by the incident stage they tell
STEP_STAGE: dict[str, str] = {
    "opened": "detection",
    "claimed": "remediation", "diagnosed": "remediation", "action_requested": "remediation",
    "approval_requested": "remediation", "action_approved": "remediation", "action_rejected": "remediation",
    "action_executed": "remediation",
    "verified": "verification", "resolved": "verification", "escalated": "verification",
}


@dataclass(frozen=True, slots=True)
class Focus:
    """What the showing chapter talks about, to highlight: the incident's stages, its ticket (detection,
    verification), its fault (injection) and the agent steps of those stages."""

    stages: frozenset[str] = frozenset()
    ticket: str | None = None
    fault: str | None = None
    step_kinds: frozenset[str] = frozenset()


def chapter_focus(view: LabView) -> Focus:
    """The :class:`Focus` of the showing chapter (nothing to highlight without ``about``)."""
    ch = view.timeline.chapter
    if ch is None or not ch.about:
        return Focus()
    stages = frozenset(ch.about)
    incident = view.incident.current()
    ticket = incident.ticket_id if incident is not None and stages & {"detection", "verification"} else None
    fault = incident.fault_id if incident is not None and "injection" in stages else None
    kinds = frozenset(k for k, stage in STEP_STAGE.items() if stage in stages)
    return Focus(stages=stages, ticket=ticket, fault=fault, step_kinds=kinds)


def _is_incident_ticket(view: LabView, ticket_id: str) -> bool:
    incident: Incident | None = view.incident.current()
    return incident is not None and incident.ticket_id == ticket_id


def _focus(line: Markup, attr: str = "focus") -> Markup:
    """``line`` highlighted: every part takes the focus colours (a failure stays red on them)."""
    if isinstance(line, str):
        return (attr, line)
    if isinstance(line, tuple):
        return _focus(line[1], "focus_bad" if line[0] == "bad" else attr)
    return [_focus(part, attr) for part in line]


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


def chaos_lines(view: LabView, now: datetime, width: int | None = None, highlight: str | None = None
                ) -> list[Markup]:
    """Active faults with TTL remaining; the last finished fault when none is active.

    A fault takes one line (``kind target TTL 1m57s``), or two when that is
    wider than ``width``, so the TTL is never cut off. The lines of active fault
    ``highlight`` (a fault id) are highlighted.
    """
    tl = view.timeline
    active = tl.active_faults
    lines: list[Markup] = []
    for f in active:
        start = len(lines)
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
        if f.fault_id == highlight:
            lines[start:] = [_focus(line) for line in lines[start:]]
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


def ticket_lines(view: LabView, now: datetime, room: int | None = None, highlight: str | None = None
                 ) -> list[Markup]:
    """Tickets newest first: id, status, invariant/entity, age (or time to close).

    With ``room``, at most that many lines (the last one then says how many more). The line of
    ticket ``highlight`` is highlighted (the chapter talks about it).
    """
    tickets = view.tickets_newest_first()
    if not tickets:
        violations = view.timeline.violations
        if violations:
            return [("warn", f"{len(violations)} violation(s), no ticket yet")]
        return [("dim", "no tickets")]
    return _fit_items(tickets, room, lambda t: _focus(_ticket_line(t, now)) if t.ticket_id == highlight
                      else _ticket_line(t, now), tail=False)


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
                selected: str | None = None, highlight: frozenset[str] = frozenset()) -> list[Markup]:
    """The current ticket's conversation, oldest first (the newest ``room`` lines if given), then the
    actions waiting for approval on any ticket (``selected`` action id highlighted). Steps whose kind
    is in ``highlight`` are highlighted (the chapter talks about them).

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
    later = 0
    marks = [i for i, s in enumerate(steps) if s.kind in highlight]
    if marks and body_room is not None and t.status in (TicketStatus.RESOLVED, TicketStatus.ESCALATED):
        # the story is over: show the steps the chapter talks about, not just the last ones
        end = max(marks[-1] + 1, min(len(steps), body_room - 1))
        later = len(steps) - end
        if later:
            steps, body_room = list(steps)[:end], max(1, body_room - 1)
    lines: list[Markup] = []
    shown = 0
    for step in reversed(steps):  # format only what can show: the newest steps
        rows = _step_lines(step, width)
        if step.kind in highlight:
            rows = [_focus(r) for r in rows]
        if body_room is not None and len(lines) + len(rows) > body_room:
            break
        lines[:0] = rows
        shown += 1
    if body_room is not None and shown < len(steps):
        keep = body_room - 1
        dropped = 1 if keep < len(lines) else 0
        lines = [_cut_note(len(steps) - shown + dropped, True), *(lines[len(lines) - keep:] if keep > 0 else [])]
    if later:
        lines.append(("dim", f"… {later} later"))
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


def incident_title(view: LabView) -> str:
    """Title of the incident panel: the fault (or the violation) and the ticket of the latest incident."""
    inc = view.incident.current()
    if inc is None:
        return "Incident"
    what = f"{inc.fault_kind} {inc.target}" if inc.fault_id is not None else f"{inc.invariant} {inc.entity}"
    return f"Incident · {what}" + (f" · {inc.ticket_id}" if inc.ticket_id else "")


def incident_lines(view: LabView, *, width: int | None = None, room: int | None = None,
                   stages: frozenset[str] = frozenset()) -> list[Markup]:
    """The latest incident's timeline, times relative to the injection (``t+0.58``).

    Without ``width``: one moment a line, oldest first. With ``width`` (a narrow
    panel, the compact layout): the moments' brief texts flowed into lines of at
    most ``width`` characters, and with ``room`` only the newest that fit in
    that many lines (a leading ``…`` says older ones were left out). Moments of
    ``stages`` (the showing chapter's) are highlighted.
    """
    inc = view.incident.current()
    if inc is None:
        return [("dim", "no incident yet")]
    moments = inc.timeline()
    if width is None:
        return [_moment_markup(inc.stamp(m.at), m.text, m.ok, m.stage in stages) for m in moments]
    tokens = [(len(inc.stamp(m.at)) + 1 + len(m.short),
               _moment_markup(inc.stamp(m.at), m.short, m.ok, m.stage in stages)) for m in moments]
    skipped = 0
    while True:
        rows = _flow(([(1, ("dim", "…"))] if skipped else []) + tokens[skipped:], width)
        if room is None or len(rows) <= room or skipped >= len(tokens) - 1:
            return rows
        skipped += 1


def _moment_markup(stamp: str, text: str, ok: bool | None, focus: bool) -> Markup:
    attr = "good" if ok is True else ("bad" if ok is False else None)
    line: Markup = [("dim", f"{stamp} "), (attr, text) if attr else text]
    return _focus(line) if focus else line


def _flow(tokens: list[tuple[int, Markup]], width: int, sep: str = "  ") -> list[Markup]:
    """Tokens (their width, their markup) packed into lines of at most ``width``, in order."""
    rows: list[list[Markup]] = []
    used = 0
    for size, markup in tokens:
        if rows and used + len(sep) + size <= width:
            rows[-1] += [sep, markup]
            used += len(sep) + size
        else:
            rows.append([markup])
            used = size
    return [list(row) for row in rows]


def services_lines(view: LabView, now: datetime) -> list[Markup]:
    """Service instances seen on the bus: alive, stopped or gone (:meth:`ClusterView.status`).

    Compact: every live instance, and of each service's others only the latest to go (a projector
    killed twice shows its successor alive and one gone instance, not a history)."""
    cluster = view.cluster
    rows = cluster.service_rows()
    if not rows:
        return [("dim", "no service heard yet")]
    status = {id(r): cluster.status(r, now) for r in rows}
    latest_gone: dict[str, ServiceRow] = {}
    for r in rows:
        known = latest_gone.get(r.service)
        if status[id(r)] != "alive" and (known is None or _heard(r) >= _heard(known)):
            latest_gone[r.service] = r
    out: list[Markup] = []
    for r in rows:
        state = status[id(r)]
        if state != "alive" and latest_gone.get(r.service) is not r:
            continue
        out.append([f"{r.service:<10.10} ", ("good" if state == "alive" else "bad", f"{state:<7}"),
                    ("dim", f"  {r.instance} pid {r.pid or '?'}")])
    return out


def _heard(r: ServiceRow) -> datetime:
    return r.last_seen or r.started_at or datetime.min.replace(tzinfo=UTC)


def footer_parts(view: LabView, *, live: bool, can_advance: bool, status: str,
                 cols: int = 200, can_decide: bool = False, prompting: bool = False,
                 replay: ReplayStatus | None = None) -> tuple[Markup, str]:
    """(left markup, right text) of the footer: keys and status | mode and event count.

    While the reject prompt is open (``prompting``) the keys are the prompt's: enter, esc. The
    approval keys take room: with them, below 100 columns the footer is laid out as narrow. When
    the keys and the status do not fit in ``cols``, the least needed key hints are left out
    (next chapter, then tab, then r, then a; quit and the prompt's keys always stay). A replay
    (``replay``) lists its keys (space, →, n, +/-, least needed last) until its end, then only q.
    """
    deciding = not prompting and can_decide and bool(view.pending_approvals())
    narrow = cols < (100 if deciding else 80)
    groups: list[tuple[int, list[Markup]]] = []  # (priority: 0 is always shown, key hint), in display order
    if prompting:
        groups += [(0, [("key", " enter "), ("footer", " reject  ")]), (0, [("key", " esc "), ("footer", " cancel ")])]
    elif deciding:
        groups += [(1, [("key", " a "), ("footer", " approve  ")]), (2, [("key", " r "), ("footer", " reject…  ")]),
                   (3, [("key", " tab "), ("footer", " next  ")])]
    if replay is not None and replay.loaded and not replay.ended and not prompting:
        groups += [(1, [("key", " space "), ("footer", " play  " if replay.paused else " pause  ")]),
                   (2, [("key", " → "), ("footer", " step  ")]), (3, [("key", " n "), ("footer", " chapter  ")]),
                   (4, [("key", " +/- "), ("footer", " speed  ")])]
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
        """80x24 design: narration, cluster|workload, chaos|tickets, incident timeline (flowed), agent
        timeline; rules, no borders."""
        wants = [6, 7, 5, 4, 0] if rows >= 28 else [5, 5, 4, 3, 0]
        narr_h, top_h, mid_h, incident_h, agent_h = _split_rows(rows, wants)
        self.narration_width = cols
        self.incident_width: int | None = cols
        half = (cols - 1) // 2
        left_mid = max(24, (cols - 1) // 3)
        self.chaos_width: int | None = left_mid
        top = urwid.Columns([(half, self._slot("cluster", top_h, boxed=False)),
                             self._slot("workload", top_h, boxed=False)], dividechars=1)
        mid = urwid.Columns([(left_mid, self._slot("chaos", mid_h, boxed=False)),
                             self._slot("tickets", mid_h, boxed=False)], dividechars=1)
        return _pile([(narr_h, self._slot("narration", narr_h, boxed=False)), (top_h, top), (mid_h, mid),
                      (incident_h, self._slot("incident", incident_h, boxed=False)),
                      (agent_h, self._slot("agent", agent_h, boxed=False, tail=True))])

    def _wide(self, cols: int, rows: int) -> urwid.Widget:
        """200x60 design: boxed narration on top; cluster/workload/chaos/services left; tickets, incident
        timeline, agent right."""
        narr_h = 7
        main_h = rows - narr_h
        self.narration_width = cols - 2
        self.incident_width = None
        self.chaos_width = None
        left_w = max(50, min(80, cols * 2 // 5))
        cluster_h, workload_h, chaos_h, services_h = _split_rows(
            main_h, [max(7, main_h // 4), max(7, main_h // 4), max(6, main_h // 6), 0])
        tickets_h, incident_h, agent_h = _split_rows(main_h, [max(8, main_h // 4), max(6, min(12, main_h // 4)), 0])
        left = _pile([
            (cluster_h, self._slot("cluster", cluster_h, boxed=True)),
            (workload_h, self._slot("workload", workload_h, boxed=True)),
            (chaos_h, self._slot("chaos", chaos_h, boxed=True)),
            (services_h, self._slot("services", services_h, boxed=True)),
        ])
        right = _pile([
            (tickets_h, self._slot("tickets", tickets_h, boxed=True)),
            (incident_h, self._slot("incident", incident_h, boxed=True, tail=True)),
            (agent_h, self._slot("agent", agent_h, boxed=True, tail=True)),
        ])
        return _pile([(narr_h, self._slot("narration", narr_h, boxed=True)),
                      (main_h, urwid.Columns([(left_w, left), right]))])

    def update(self, view: LabView, now: datetime, *, live: bool = True, can_advance: bool = True,
               status: str = "", can_decide: bool = False, selected: str | None = None,
               prompting: bool = False, replay: ReplayStatus | None = None) -> None:
        """Show ``view`` as of ``now`` (``replay``: the replay's state, for the header and footer);
        only changed lines are re-set."""
        cols, rows = self.size
        if self.kind == "tiny":
            self._tiny.set_text(f"terminal too small ({cols}x{rows}); need at least 80x24")
            return
        self.header.show(header_parts(view, now, cols, replay))
        self.footer.show(footer_parts(view, live=live, can_advance=can_advance, status=status, cols=cols,
                                      can_decide=can_decide, prompting=prompting, replay=replay))
        slots = self.slots
        narration = slots["narration"]
        narration.show(narration_title(view), narration_lines(view, now, self.narration_width, narration.room))
        rows = rows_for(view)
        slots["cluster"].show(rows.cluster_title, cluster_lines(view, now, rows))
        slots["workload"].show(rows.workload_title if self.kind == "wide" else "Workload",
                               workload_lines(view, now, limit=max(1, slots["workload"].room), rows=rows))
        focus = chapter_focus(view)
        slots["chaos"].show("Chaos", chaos_lines(view, now, self.chaos_width, focus.fault))
        slots["tickets"].show("Tickets", ticket_lines(view, now, slots["tickets"].room, focus.ticket))
        incident = slots["incident"]
        incident.show(incident_title(view), incident_lines(view, width=self.incident_width, room=incident.room,
                                                           stages=focus.stages))
        agent = slots["agent"]
        agent_width = cols - 2 if self.kind == "compact" else cols - max(50, min(80, cols * 2 // 5)) - 2
        shown = view.current_ticket()
        steps = focus.step_kinds if shown is not None and _is_incident_ticket(view, shown.ticket_id) else frozenset()
        agent.show(agent_title(view), agent_lines(view, agent.room, agent_width, selected, steps))
        if "services" in slots:
            slots["services"].show("Services", services_lines(view, now))


def build_screen(view: LabView, size: tuple[int, int], now: datetime, *, live: bool = True,
                 can_advance: bool = True, status: str = "", replay: ReplayStatus | None = None) -> urwid.Widget:
    """The whole screen for ``size`` (cols, rows) as a fresh box widget showing ``view`` at ``now``."""
    layout = ScreenLayout(size)
    layout.update(view, now, live=live, can_advance=can_advance, status=status, replay=replay)
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
        self.replay_status: Callable[[], ReplayStatus] | None = None  # set in a paced replay
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
        replay = self.replay_status() if self.replay_status is not None else None
        key = (self.view.version, int(now.timestamp()), self.status, self.selected, self.prompting, replay)
        if self._keys.get(size) != key:
            layout.update(self.view, now, live=self.live, can_advance=self.can_advance, status=self.status,
                          can_decide=self.can_decide, selected=self.selected, prompting=self.prompting,
                          replay=replay)
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

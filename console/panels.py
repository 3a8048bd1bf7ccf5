"""The lines of the console's panels, rendered from a :class:`~projections.lab_view.LabView`.

Every function is pure (no I/O, no clock: ``now`` is always passed in): it
turns the view into lines of urwid text markup, one screen row each (long
lines end in an ellipsis when shown, never wrap). Functions given a ``room``
never return more lines (a list cut to fit says how many it left out); the
narration panel is :mod:`console.narration`'s, the layout that places the
panels :mod:`console.layout`'s.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from console.format import STATUS_ATTR, Markup, cut_note, fit_items, flow, fmt_clock, highlighted, markup_width, since
from console.replay import ReplayStatus
from console.subject_rows import cluster_rows, picture, row_markup, rows_for, workload_rows
from projections.cluster import ServiceRow
from projections.lab_view import LabView, Step, fmt_tokens
from projections.text import call_text
from subjects.contract import NeutralRows, fmt_duration
from tickets.state import Action, TicketState, TicketStatus


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
            lines[start:] = [highlighted(line) for line in lines[start:]]
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
    return fit_items(tickets, room, lambda t: highlighted(_ticket_line(t, now)) if t.ticket_id == highlight
                     else _ticket_line(t, now), tail=False)


def _ticket_line(t: TicketState, now: datetime) -> Markup:
    closed = t.status in (TicketStatus.RESOLVED, TicketStatus.ESCALATED)
    age = (t.updated_at - t.opened_at).total_seconds() if closed else since(now, t.opened_at)
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
            rows = [highlighted(r) for r in rows]
        if body_room is not None and len(lines) + len(rows) > body_room:
            break
        lines[:0] = rows
        shown += 1
    if body_room is not None and shown < len(steps):
        keep = body_room - 1
        dropped = 1 if keep < len(lines) else 0
        lines = [cut_note(len(steps) - shown + dropped, True), *(lines[len(lines) - keep:] if keep > 0 else [])]
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
    """A requested action as a call, ``restart_node(node='rl-2')``, as the agent timeline writes it but
    in full: a human approving it reads every argument (the panel, not the call, is cut to width)."""
    return call_text(action.tool, action.args, limit=None)


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
        rows = flow(([(1, ("dim", "…"))] if skipped else []) + tokens[skipped:], width)
        if room is None or len(rows) <= room or skipped >= len(tokens) - 1:
            return rows
        skipped += 1


def _moment_markup(stamp: str, text: str, ok: bool | None, focus: bool) -> Markup:
    attr = "good" if ok is True else ("bad" if ok is False else None)
    line: Markup = [("dim", f"{stamp} "), (attr, text) if attr else text]
    return highlighted(line) if focus else line


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
    room = cols - len(right) - markup_width(tail)
    shown: set[int] = set()
    for i in sorted(range(len(groups)), key=lambda i: groups[i][0]):
        width = markup_width(groups[i][1])
        if groups[i][0] == 0 or width <= room:
            shown.add(i)
            room -= width
    keys = [part for i, (_, parts) in enumerate(groups) if i in shown for part in parts]
    return keys + tail, right

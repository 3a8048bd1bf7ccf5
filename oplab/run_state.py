"""A run as it stood at one point of its log, for ``oplab state``.

The run's events up to the position (inclusive) are folded with the console's own fold,
:class:`projections.lab_view.LabView`, so the state printed here is what the console showed at
that moment; this module only reads the view out as one JSON-able document
(:func:`state_document`) and as lines for people (:func:`state_lines`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from events import Event, WorkloadStats
from oplab.event_query import Position
from projections.lab_view import LabView
from tickets.state import ACTIVE


def fold_until(run: str, history: Iterable[tuple[int, Event]],
               position: Position | None) -> tuple[LabView, int | None, datetime | None]:
    """``run``'s events folded up to ``position`` (None: all of them); returns the view and the
    sequence and time of the last event folded (None, None: nothing was)."""
    view = LabView(run)
    last_seq: int | None = None
    last_time: datetime | None = None
    for seq, event in history:
        if position is not None and not position.before_or_at(seq, event):
            break  # the history is in log order: nothing later is at or before the position
        if view.apply(event):
            last_seq, last_time = seq, event.time
    return view, last_seq, last_time


def state_document(view: LabView, seq: int | None, time: datetime | None) -> dict[str, Any]:
    """The state as one object: ``run``, ``at`` {seq, time}, ``chapter``, ``faults`` (active, by the
    rule of :mod:`projections.faults`: injected and not reverted),
    ``tickets``, ``cluster`` (nodes, components, blind) and ``workload`` (the latest figures)."""
    timeline, cluster = view.timeline, view.cluster
    chapter = timeline.chapter
    snapshot = cluster.good_snapshot
    workload = cluster.workload
    return {
        "run": view.run,
        "at": {"seq": seq, "time": time.isoformat() if time else None},
        "chapter": None if chapter is None else {
            "number": chapter.number, "total": chapter.total, "chapter": chapter.chapter, "title": chapter.title,
            "started_at": chapter.started_at.isoformat(),
            "finished_at": chapter.finished_at.isoformat() if chapter.finished_at else None},
        "faults": [{"fault_id": f.fault_id, "kind": f.kind, "target": f.target, "status": f.status,
                    "since": (f.injected_at or f.requested_at).isoformat() if (f.injected_at or f.requested_at)
                    else None}
                   for f in view.faults.active()],
        "tickets": [{"ticket_id": t.ticket_id, "status": str(t.status.value), "invariant": t.invariant,
                     "entity": t.entity, "held_by": t.claimed_by if t.status in ACTIVE else None,
                     "claimed_by": t.claimed_by, "resolved_by": t.resolved_by}
                    for t in view.tickets_newest_first()],
        "cluster": {
            "nodes": [{"node": n.node, "status": n.status, "state": n.state} for n in snapshot.nodes]
            if snapshot else [],
            "components": [{"name": c.name, "status": c.status, "state": c.state} for c in snapshot.components]
            if snapshot else [],
            "blind": cluster.blind,
            "blind_error": cluster.blind_error,
            "observed_at": cluster.snapshot_at.isoformat() if cluster.snapshot_at else None,
        },
        "workload": None if workload is None else _workload(workload, cluster.workload_at),
    }


def _workload(stats: WorkloadStats, at: datetime | None) -> dict[str, Any]:
    """The interval's totals (:meth:`WorkloadStats.totals`); ``p99_ms``: the slowest part's."""
    totals = stats.totals()
    return {"at": at.isoformat() if at else None, "interval_s": stats.interval_s, "sent": totals.sent,
            "ok": totals.ok, "rejected": totals.rejected, "errors": totals.errors, "p99_ms": totals.p99_ms}


def state_lines(doc: dict[str, Any]) -> list[str]:
    """``state_document`` for people: one labelled line per part."""
    at = doc["at"]
    lines = [f"run {doc['run']} at seq {at['seq']} ({_clock(at['time'], date=True)})"]
    chapter = doc["chapter"]
    lines.append("chapter   " + (f"{chapter['number']}/{chapter['total']} {chapter['title']}"
                                 + (" (finished)" if chapter["finished_at"] else "") if chapter else "-"))
    faults = [f"{f['kind']} on {f['target'] or '-'} since {_clock(f['since'])} ({f['status']}, {f['fault_id']})"
              for f in doc["faults"]]
    lines += _labelled("faults", faults or ["none active"])
    tickets = [f"{t['ticket_id']} {t['status']:<11} {t['invariant']}/{t['entity']}"
               + (f" held by {t['held_by']}" if t["held_by"] else "")
               + (f" resolved by {t['resolved_by']}" if t["resolved_by"] else "")
               for t in doc["tickets"]]
    lines += _labelled("tickets", tickets or ["none"])
    cluster = doc["cluster"]
    nodes = ", ".join(f"{n['node']} {n['status']}" for n in cluster["nodes"]) or "not observed yet"
    components = ", ".join(f"{c['name']} {c['status']}" for c in cluster["components"])
    blind = f"  BLIND: {cluster['blind_error']}" if cluster["blind"] else ""
    lines.append(f"cluster   {nodes}" + (f"; {components}" if components else "") + blind)
    w = doc["workload"]
    if w is not None:
        p99 = f", p99 {w['p99_ms']:.1f} ms" if w["p99_ms"] is not None else ""
        lines.append(f"workload  sent {w['sent']}, ok {w['ok']}, rejected {w['rejected']}, errors {w['errors']}"
                     f"{p99} (over {w['interval_s']:g} s, at {_clock(w['at'])})")
    return lines


def _labelled(label: str, items: list[str]) -> list[str]:
    return [f"{label if i == 0 else '':<9} {item}" for i, item in enumerate(items)]


def _clock(iso: str | None, *, date: bool = False) -> str:
    if iso is None:
        return "-"
    moment = datetime.fromisoformat(iso)
    text = f"{moment:%Y-%m-%d %H:%M:%S.%f}" if date else f"{moment:%H:%M:%S.%f}"
    return text[:-3] + (" UTC" if date else "")

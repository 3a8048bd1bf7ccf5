"""The console rows role: what the cluster and workload panels show for a subject.

The console folds the log into a :class:`Picture` (the latest good snapshot,
the latest workload stats, whether the observer is blind) and asks the
subject's console rows (a :class:`NeutralRows`) for the lines of its two panels. A row is a list
of :class:`Cell` s, each with a tone the console maps to its palette; the rows
are pure functions of the picture (no I/O, no clock: ``now`` is in the picture).

:class:`NeutralRows` draws any subject from the neutral core (nodes and
components with their status and state; operations sent/ok/rejected/errors);
a subject subclasses it to say more (a rate limiter's keys against their limits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal

from events import ComponentView, NodeStats, NodeView, ObsSnapshot, WorkloadStats

Tone = Literal["normal", "good", "bad", "warn", "dim"]


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    tone: Tone = "normal"


Row = list[Cell]

_STATUS_CELLS: dict[str, Cell] = {
    "up": Cell("UP  ", "good"),
    "degraded": Cell("DEGR", "warn"),
    "down": Cell("DOWN", "bad"),
    "unknown": Cell("?   ", "warn"),
}


@dataclass(frozen=True)
class Picture:
    """What the panels are drawn from. ``snapshot`` is the latest *good* observation (a blind
    observer keeps the last picture, and ``blind_error`` says it is stale)."""

    snapshot: ObsSnapshot | None
    workload: WorkloadStats | None
    blind_error: str | None
    now: datetime

    @property
    def blind(self) -> bool:
        return self.blind_error is not None


def status_cell(status: str) -> Cell:
    return _STATUS_CELLS.get(status, _STATUS_CELLS["unknown"])


def fmt_duration(seconds: float | None) -> str:
    """Compact duration: ``0.4s``, ``12s``, ``1m05s``, ``2h03m``; ``-`` for None."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{(whole % 3600) // 60:02d}m"


def ago(now: datetime, then: datetime | None) -> str:
    """How long ago ``then`` was, as :func:`fmt_duration` writes it (``-``: never)."""
    return fmt_duration(None if then is None else (now - then).total_seconds())


class NeutralRows:
    """Panels for any subject, from the neutral core of snapshots and workload stats."""

    cluster_title: ClassVar[str] = "Cluster"
    workload_title: ClassVar[str] = "Workload"

    def cluster(self, picture: Picture) -> list[Row]:
        """One row per node (status, state, last seen, client latency and errors), then per component."""
        snap = picture.snapshot
        stats = {n.node: n for n in picture.workload.nodes} if picture.workload else {}
        if snap is None and not stats:
            return [[Cell("no observation yet", "dim")]]
        rows: list[Row] = []
        nodes: Sequence[NodeView] = snap.nodes if snap is not None else ()
        for node in nodes:
            rows.append(self.node_row(node, stats.get(node.node), picture))
        known = {n.node for n in nodes}
        rows.extend(self.node_row(NodeView(node=name, status="unknown"), s, picture)
                    for name, s in stats.items() if name not in known)
        for component in snap.components if snap is not None else ():
            rows.append(self.component_row(component, picture))
        return rows

    def node_row(self, node: NodeView, stats: NodeStats | None, picture: Picture) -> Row:
        status = "unknown" if picture.blind else node.status
        row = [Cell(f"{node.node:<8.8} "), status_cell(status)]
        if node.state and node.state.lower() != status:
            row.append(Cell(f" {node.state}", "dim"))
        row.append(Cell(f" seen {ago(picture.now, node.last_seen)} ago"))
        if stats is not None and stats.p99_ms is not None and status == "up":
            row.append(Cell(f"  p99 {stats.p99_ms:.0f}ms"))
        if stats is not None and stats.errors:
            row.append(Cell(f"  err {stats.errors}", "warn"))
        return row

    def component_row(self, component: ComponentView, picture: Picture) -> Row:
        if picture.blind:
            return [Cell(f"{component.name:<8.8} "), status_cell("unknown"), Cell(" stale: observer blind")]
        row = [Cell(f"{component.name:<8.8} "), status_cell(component.status)]
        if component.status == "up" and component.latency_ms is not None:
            row.append(Cell(f" {component.latency_ms:.1f} ms"))
        elif component.status != "up" and component.detail:
            row.append(Cell(f" {component.detail}"))
        return row

    def workload(self, picture: Picture, limit: int | None = None) -> list[Row]:
        """The busiest operations: sent, ok, rejected, errors (errors first)."""
        stats = picture.workload
        if stats is None or not stats.operations:
            return [[Cell("no workload stats yet", "dim")]]
        ops = sorted(stats.operations, key=lambda o: (-o.errors, -o.sent, o.name))
        rows: list[Row] = []
        for op in ops if limit is None else ops[:limit]:
            row = [Cell(f"{op.name:<12.12} "), Cell(f"tx {op.sent:>4} ok {op.ok:>4} rej {op.rejected:>3}")]
            if op.errors:
                row.append(Cell(f" err {op.errors}", "bad"))
            rows.append(row)
        return rows

"""TiKV's console panels: stores with PD's state, leaders and regions; region health; KV ops."""

from __future__ import annotations

from events import NodeStats, NodeView
from subjects.contract import Cell, NeutralRows, Picture, Row, ago, status_cell
from subjects.tikv.details import snapshot_details, workload_details


class TiKVRows(NeutralRows):
    cluster_title = "Cluster · stores and PD"
    workload_title = "Workload · KV prober"

    def node_row(self, node: NodeView, stats: NodeStats | None, picture: Picture) -> Row:
        """``tikv1 UP Up L3 R9 hb 0.4s``: status, PD's state, leaders, regions, last heartbeat."""
        status = "unknown" if picture.blind else node.status
        facts = snapshot_details(picture.snapshot).stores.get(node.node) if picture.snapshot else None
        row = [Cell(f"{node.node:<8.8} "), status_cell(status), Cell(f" {node.state or '?':<12.12}",
                                                                       "dim" if status == "up" else "warn")]
        if facts is not None:
            row.append(Cell(f" L{facts.leader_count} R{facts.region_count}"))
            if not facts.probe_ok:
                row.append(Cell(f"  status: {facts.probe_error}", "bad"))
        row.append(Cell(f"  hb {ago(picture.now, node.last_seen)}"))
        return row

    def cluster(self, picture: Picture) -> list[Row]:
        rows = super().cluster(picture)
        regions = snapshot_details(picture.snapshot).regions if picture.snapshot else None
        if regions is not None:
            bad = regions.under_replicated > 0
            rows.append([Cell("regions  "), Cell("WARN" if bad else "OK  ", "bad" if bad else "good"),
                         Cell(f" {regions.total} total, {regions.miss_peer} miss, {regions.down_peer} down, "
                              f"{regions.pending_peer} pending")])
        return rows

    def workload(self, picture: Picture, limit: int | None = None) -> list[Row]:
        rows = super().workload(picture, limit)
        if picture.workload is None:
            return rows
        d = workload_details(picture.workload)
        lost = Cell(f"LOST {d.lost_total}", "bad") if d.lost_total else Cell("lost 0", "good")
        rows.append([Cell(f"{'writes':<12.12} "), Cell(f"acked {d.acked_total} verified {d.verified_total} "), lost])
        return rows

"""Neutral console rows: any subject is drawn from the neutral core of its snapshots and stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events import ComponentView, NodeStats, NodeView, ObsSnapshot, OperationStats, WorkloadStats
from subjects.contract import NeutralRows, Picture, ago, fmt_duration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def text(row: list) -> str:  # type: ignore[type-arg]
    return "".join(cell.text for cell in row)


def snapshot() -> ObsSnapshot:
    return ObsSnapshot(
        subject="anything", ok=True, observed_at=NOW,
        nodes=[NodeView(node="s1", status="up", state="Up", last_seen=NOW - timedelta(seconds=2)),
               NodeView(node="s2", status="down", state="Disconnected", last_seen=NOW - timedelta(seconds=25))],
        components=[ComponentView(name="pd-1", status="up", latency_ms=1.25),
                    ComponentView(name="pd-2", status="degraded", detail="no leader heartbeat")],
    )


def stats() -> WorkloadStats:
    return WorkloadStats(
        interval_s=1.0,
        operations=[OperationStats(name="get", sent=50, ok=50), OperationStats(name="put", sent=40, ok=30, errors=10)],
        nodes=[NodeStats(node="s1", sent=90, ok=80, errors=10, p99_ms=3.2)],
    )


def test_nodes_show_status_the_subjects_own_state_and_client_latency() -> None:
    rows = NeutralRows().cluster(Picture(snapshot(), stats(), None, NOW))
    assert text(rows[0]) == "s1       UP   seen 2.0s ago  p99 3ms  err 10"
    assert text(rows[1]) == "s2       DOWN Disconnected seen 25s ago"
    assert rows[1][1].tone == "bad" and rows[0][1].tone == "good"
    assert text(rows[2]) == "pd-1     UP   1.2 ms"
    assert text(rows[3]) == "pd-2     DEGR no leader heartbeat" and rows[3][1].tone == "warn"


def test_blind_reads_unknown_and_stale() -> None:
    rows = NeutralRows().cluster(Picture(snapshot(), None, "timed out", NOW))
    assert [r[1].text.strip() for r in rows] == ["?", "?", "?", "?"]
    assert text(rows[2]).endswith("stale: observer blind")


def test_workload_rows_put_errors_first() -> None:
    rows = NeutralRows().workload(Picture(None, stats(), None, NOW))
    assert [text(r).split()[0] for r in rows] == ["put", "get"]
    assert rows[0][-1].text == " err 10" and rows[0][-1].tone == "bad"
    assert len(NeutralRows().workload(Picture(None, stats(), None, NOW), limit=1)) == 1


def test_nothing_observed_yet_says_so() -> None:
    assert text(NeutralRows().cluster(Picture(None, None, None, NOW))[0]) == "no observation yet"
    assert text(NeutralRows().workload(Picture(None, None, None, NOW))[0]) == "no workload stats yet"


def test_durations() -> None:
    assert [fmt_duration(x) for x in (None, -1, 0.44, 12.9, 65, 3 * 3600 + 120)] == [
        "-", "0.0s", "0.4s", "12s", "1m05s", "3h02m"]
    assert ago(NOW, None) == "-" and ago(NOW, NOW - timedelta(seconds=3)) == "3.0s"


def test_nodes_only_the_clients_know_are_listed_as_unknown() -> None:
    rows = NeutralRows().cluster(Picture(None, stats(), None, NOW))
    assert [text(r).split()[:2] for r in rows] == [["s1", "?"]]

"""ClusterView: the latest (and latest good) snapshot, blindness, the latest workload stats, services alive."""

from __future__ import annotations

from events import ServiceHeartbeat, ServiceStopping, TicketOpened
from projections.cluster import ClusterView
from tests.console.script import Story

RUN = "r20261124t235800-cd34"


def fold(story: Story) -> ClusterView:
    view = ClusterView()
    for event in story.events:
        view.apply(event)
    return view


def test_latest_snapshot_wins() -> None:
    s = Story(RUN)
    s.snapshot(1)
    s.snapshot(2, down=("rl-2",))
    view = fold(s)
    assert view.snapshot is view.good_snapshot and view.snapshot is not None
    assert [(n.node, n.status) for n in view.snapshot.nodes] == [("rl-1", "up"), ("rl-2", "down"), ("rl-3", "up")]
    assert view.snapshots == 2 and view.snapshot_at == s.t(2)
    assert not view.blind and view.blind_error is None


def test_a_failed_observation_reads_blind_never_healthy() -> None:
    s = Story(RUN)
    s.snapshot(1, down=("rl-3",))
    s.snapshot(2, ok=False)
    view = fold(s)
    assert view.blind
    assert view.blind_error == "connection refused"
    assert view.good_snapshot is not None and view.good_snapshot.ok  # the last good picture, labelled stale
    assert view.snapshot is not None and not view.snapshot.ok
    s.snapshot(3)
    view = fold(s)
    assert not view.blind and view.blind_error is None


def test_the_latest_workload_stats_are_kept_with_when_they_came() -> None:
    s = Story(RUN)
    s.workload(1, {"k": (10, 5, 0)})
    s.workload(2, {"k": (10, 7, 1)})
    view = fold(s)
    assert view.workload is not None and view.workload.operations[0].sent == 7
    assert view.workload_at == s.t(2)


def test_the_subjects_own_details_are_kept_for_its_console_rows() -> None:
    s = Story(RUN)
    s.snapshot(1, counters={"calm": (10, 100)})
    view = fold(s)
    assert view.good_snapshot is not None and view.good_snapshot.details["counters"][0]["key"] == "calm"


def test_services_alive_from_svc_events() -> None:
    s = Story(RUN)
    s.service(0, "monitor")
    s.service(0, "agent")
    s.service(0, "chaos")
    s.at(8, ServiceHeartbeat(service="monitor", instance="monitor-0", version="0.1.0", pid=100, uptime_s=8))
    s.at(9, ServiceStopping(service="agent", instance="agent-0"))
    view = fold(s)
    assert view.services_alive(s.t(10)) == ["chaos", "monitor"]
    assert view.services_alive(s.t(20)) == ["monitor"]  # chaos silent for 20 s > 15 s
    assert view.services_alive(s.t(20), stale_after_s=30) == ["chaos", "monitor"]
    rows = {r.service: r for r in view.service_rows()}
    assert rows["agent"].stopping and rows["agent"].reason == "signal"
    s.service(12, "agent")
    assert "agent" in fold(s).services_alive(s.t(13))


def test_unrelated_events_change_nothing() -> None:
    s = Story(RUN)
    event = s.opened(1)
    view = ClusterView()
    assert isinstance(event.data, TicketOpened)
    assert view.apply(event) is False
    assert view.snapshot is None and view.workload is None

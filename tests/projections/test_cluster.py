"""ClusterView: the latest snapshot's neutral core, blindness, client stats per node, services alive."""

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
    nodes = {n.node: n for n in view.nodes()}
    assert [n.node for n in view.nodes()] == ["rl-1", "rl-2", "rl-3"]
    assert nodes["rl-2"].status == "down"
    assert nodes["rl-1"].status == "up"
    assert nodes["rl-2"].last_seen == s.t(2 - 12)
    assert nodes["rl-2"].last_seen_s(s.t(10)) == 20.0
    assert view.nodes_down() == ["rl-2"]
    [redis] = view.components()
    assert (redis.name, redis.status, redis.latency_ms) == ("redis", "up", 0.6)
    assert view.snapshots == 2 and view.snapshot_at == s.t(2)
    assert not view.blind


def test_a_failed_observation_reads_blind_never_healthy() -> None:
    s = Story(RUN)
    s.snapshot(1, down=("rl-3",))
    s.snapshot(2, ok=False)
    view = fold(s)
    assert view.blind
    assert view.blind_error == "connection refused"
    assert {n.status for n in view.nodes()} == {"unknown"}
    assert view.nodes_down() == []
    assert [c.name for c in view.components()] == ["redis"]  # the last good picture, labelled stale by `blind`
    s.snapshot(3)
    view = fold(s)
    assert not view.blind and view.blind_error is None


def test_a_degraded_component_is_reported() -> None:
    s = Story(RUN)
    s.snapshot(1, redis_ok=False)
    assert [c.status for c in fold(s).components()] == ["degraded"]


def test_the_subjects_own_details_are_kept_for_its_console_rows() -> None:
    s = Story(RUN)
    s.snapshot(1, counters={"calm": (10, 100)})
    view = fold(s)
    assert view.good_snapshot is not None and view.good_snapshot.details["counters"][0]["key"] == "calm"


def test_workload_node_stats_join_the_node_rows() -> None:
    s = Story(RUN)
    s.snapshot(1)
    s.workload(2, {"k": (10, 5, 0)})
    node = fold(s).nodes()[0]
    assert (node.sent, node.p99_ms, node.errors) == (100, 4.0, 0)


def test_nodes_only_the_loadgen_knows_are_listed_as_unknown() -> None:
    s = Story(RUN)
    s.workload(2, {"k": (10, 5, 0)})
    nodes = fold(s).nodes()
    assert [(n.node, n.status) for n in nodes] == [("rl-1", "unknown"), ("rl-2", "unknown"), ("rl-3", "unknown")]


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
    assert view.nodes() == [] and view.components() == [] and view.snapshot is None

"""ClusterView: latest snapshot, blindness, keys over-limit first, services alive."""

from __future__ import annotations

from events import ServiceHeartbeat, ServiceStopping, TicketOpened
from projections.cluster import ClusterView, KeyRow
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
    assert view.backend is not None and view.backend.ok and view.backend.latency_ms == 0.6
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
    assert view.backend is not None  # the last good picture, labelled stale by `blind`
    s.snapshot(3)
    view = fold(s)
    assert not view.blind and view.blind_error is None


def test_backend_failure_is_reported() -> None:
    s = Story(RUN)
    s.snapshot(1, redis_ok=False)
    assert fold(s).backend.ok is False  # type: ignore[union-attr]


def test_keys_over_limit_first_most_over_first_then_nearest_their_limit() -> None:
    s = Story(RUN)
    s.snapshot(1, counters={
        "calm": (10, 100), "busy": (90, 100), "over-a": (120, 100), "over-b": (80, 40), "mid": (50, 100),
    })
    s.workload(1.5, {"busy": (100, 95, 0), "over-b": (40, 90, 50), "loadgen-only": (30, 20, 0)})
    view = fold(s)
    keys = view.keys()
    assert [k.key for k in keys] == ["over-b", "over-a", "busy", "mid", "calm", "loadgen-only"]
    assert [k.over_limit for k in keys] == [True, True, False, False, False, False]
    over_b = keys[0]
    assert (over_b.count, over_b.limit, over_b.sent, over_b.blocked) == (80, 40, 90, 50)
    assert over_b.ratio == 2.0
    only = keys[5]
    assert (only.count, only.limit, only.allowed) == (None, 30, 20)
    assert [k.key for k in view.keys(limit=2)] == ["over-b", "over-a"]
    assert [k.key for k in view.over_limit_keys()] == ["over-b", "over-a"]


def test_count_at_the_limit_is_not_over() -> None:
    assert not KeyRow(key="k", limit=100, count=100).over_limit
    assert KeyRow(key="k", limit=100, count=101).over_limit
    assert not KeyRow(key="k", limit=100).over_limit


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
    assert view.nodes() == [] and view.keys() == [] and view.snapshot is None

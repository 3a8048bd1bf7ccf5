"""ClusterView: the latest (and latest good) snapshot, blindness, the latest workload stats, services alive."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from events import Event, ServiceHeartbeat, ServiceStarted, ServiceStopping, TicketOpened, decode
from projections.cluster import ClusterView
from tests.console.script import Story

RUN = "r20261124t235800-cd34"


def fold(story: Story) -> ClusterView:
    return story.folded(ClusterView())


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


# -- liveness: gone after missed heartbeats of the instance's own interval -----------------------------


def started(s: Story, at: float, service: str, instance: str, heartbeat_s: float = 5.0) -> None:
    s.at(at, ServiceStarted(service=service, instance=instance, version="t", pid=1, heartbeat_s=heartbeat_s))


def beat(s: Story, at: float, service: str, instance: str, heartbeat_s: float = 5.0) -> None:
    s.at(at, ServiceHeartbeat(service=service, instance=instance, version="t", pid=1, uptime_s=at,
                              heartbeat_s=heartbeat_s))


def status(view: ClusterView, s: Story, at: float) -> dict[str, str]:
    return {r.instance: view.status(r, s.t(at)) for r in view.service_rows()}


def test_an_instance_is_gone_after_three_missed_heartbeats_of_its_own_interval() -> None:
    s = Story(RUN)
    started(s, 0, "monitor", "fast", heartbeat_s=1.0)
    beat(s, 1, "monitor", "fast", heartbeat_s=1.0)
    started(s, 0, "agent", "slow", heartbeat_s=5.0)
    view = fold(s)
    assert status(view, s, 3.9) == {"fast": "alive", "slow": "alive"}
    assert status(view, s, 4.1) == {"fast": "gone", "slow": "alive"}  # 3 beats of 1 s missed since t=1
    assert status(view, s, 14.9)["slow"] == "alive"
    assert status(view, s, 15.1)["slow"] == "gone"  # 3 beats of 5 s missed since t=0
    assert view.services_alive(s.t(4.1)) == ["agent"]


def test_an_instance_that_said_it_stops_is_stopped_at_once() -> None:
    s = Story(RUN)
    started(s, 0, "chaos", "c1")
    s.at(1, ServiceStopping(service="chaos", instance="c1", reason="signal"))
    assert status(fold(s), s, 1.5) == {"c1": "stopped"}


def test_a_killed_instance_is_gone_once_its_successor_started_and_it_missed_a_beat() -> None:
    s = Story(RUN)
    started(s, 0, "projector", "old")
    beat(s, 5, "projector", "old")  # SIGKILL at about 6 s: no svc.stopping, no more beats
    started(s, 8, "projector", "new")  # supervisord restarted it
    view = fold(s)
    assert status(view, s, 12) == {"new": "alive", "old": "alive"}  # 7 s silent: one beat may be late
    assert status(view, s, 12.6) == {"new": "alive", "old": "gone"}  # 7.6 s > 1.5 beats, a successor up
    assert view.services_alive(s.t(12.6)) == ["projector"]


def test_instances_started_together_are_siblings_not_successors() -> None:
    s = Story(RUN)
    started(s, 0, "agent", "agent-0")
    started(s, 0.2, "agent", "agent-1")
    beat(s, 5.2, "agent", "agent-1")
    view = fold(s)  # agent-0's beat due at 5 s is a little late: it is not replaced by agent-1
    assert status(view, s, 5.3) == {"agent-0": "alive", "agent-1": "alive"}


def test_a_run_recorded_before_heartbeats_carried_their_interval_reads_with_five_seconds() -> None:
    fixture = Path(__file__).parents[1] / "fixtures" / "v1-node-kill-claude.jsonl"
    doc = next(json.loads(line)["data"] for line in fixture.read_text().splitlines() if '"svc.heartbeat"' in line)
    assert "heartbeat_s" not in doc["data"]
    event = decode(json.dumps(doc).encode())
    assert isinstance(event, Event) and isinstance(event.data, ServiceHeartbeat)
    assert event.data.heartbeat_s == 5.0
    view = ClusterView()
    view.apply(event)
    [row] = view.service_rows()
    assert row.alive(event.time + timedelta(seconds=15)) and not row.alive(event.time + timedelta(seconds=15.1))

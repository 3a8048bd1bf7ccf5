"""Old event versions are read through upcasters; what cannot be read is an InvalidEvent with the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import Event, InvalidEvent, ObsSnapshot, Payload, WorkloadStats, decode
from events.upcasting import UpcastError, upcasters

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v1-node-kill-claude.jsonl"


def v1(type_name: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_name, "v": 1, "run": "r1", "source": "monitor/x", "data": data}).encode()


V1_SNAPSHOT = {
    "subject": "ratelimiter", "ok": True, "observed_at": "2026-12-01T20:02:21Z",
    "nodes": [{"node": "node-1", "url": "http://127.0.0.1:8101", "status": "up", "pid": 42, "health_ok": True,
               "heartbeat_age_s": 0.05},
              {"node": "node-2", "url": "http://127.0.0.1:8102", "status": "down", "pid": 43, "health_ok": False,
               "heartbeat_age_s": 4.2, "detail": "/health connection refused"}],
    "backend": {"name": "redis", "ok": True, "latency_ms": 0.4, "info": {"reads": "ok"}, "writable": True},
    "counters": [{"key": "user:alice", "count": 12, "limit": 40, "window_s": 1.0, "declared_limit": 40}],
}


def test_a_v1_snapshot_reads_as_v2_with_its_subjects_fields_in_details() -> None:
    event = decode(v1("obs.snapshot", V1_SNAPSHOT))
    assert isinstance(event, Event) and event.v == 2 and isinstance(event.data, ObsSnapshot)
    snap = event.data
    assert [(n.node, n.status, n.address) for n in snap.nodes] == [
        ("node-1", "up", "http://127.0.0.1:8101"), ("node-2", "down", "http://127.0.0.1:8102")]
    assert snap.nodes[1].detail == "/health connection refused"
    assert [(c.name, c.status, c.latency_ms) for c in snap.components] == [("redis", "up", 0.4)]
    assert snap.details["nodes"]["node-2"] == {"pid": 43, "health_ok": False, "heartbeat_age_s": 4.2}
    assert snap.details["backend"]["writable"] is True
    assert snap.details["counters"][0]["key"] == "user:alice"


@pytest.mark.parametrize("backend, status, state", [
    ({"name": "redis", "ok": False, "writable": False, "write_error": "OOM"}, "degraded", "writes failing"),
    ({"name": "redis", "ok": False, "error": "refused", "info": {"reads": "failed"}}, "down", "unreachable"),
])
def test_a_failing_v1_backend_is_degraded_if_it_answered_and_down_if_not(
        backend: dict[str, Any], status: str, state: str) -> None:
    event = decode(v1("obs.snapshot", {**V1_SNAPSHOT, "ok": False, "backend": backend}))
    assert isinstance(event, Event)
    [component] = event.data.components  # type: ignore[attr-defined]
    assert (component.status, component.state) == (status, state)
    assert component.detail in ("OOM", "refused")


def test_a_v1_snapshot_without_backend_or_counters_has_none() -> None:
    event = decode(v1("obs.snapshot", {"subject": "s", "ok": False, "error": "timed out"}))
    assert isinstance(event, Event)
    assert event.data.components == [] and event.data.details == {}  # type: ignore[attr-defined]


def test_v1_workload_stats_read_as_neutral_counts() -> None:
    stats = {"interval_s": 1.0, "ended_at": "2026-12-01T20:02:21Z",
             "keys": [{"key": "api:checkout", "limit": 15, "sent": 37, "allowed": 15, "blocked": 22, "errors": 0}],
             "nodes": [{"node": "node-1", "sent": 59, "allowed": 52, "blocked": 7, "errors": 0, "p50_ms": 1.6,
                        "p99_ms": 3.6, "keys": [{"key": "api:checkout", "sent": 12, "allowed": 5, "blocked": 7}]}]}
    event = decode(v1("workload.stats", stats))
    assert isinstance(event, Event) and isinstance(event.data, WorkloadStats)
    data = event.data
    [op] = data.operations
    assert (op.name, op.sent, op.ok, op.rejected, op.errors) == ("api:checkout", 37, 15, 22, 0)
    [node] = data.nodes
    assert (node.node, node.ok, node.rejected, node.p99_ms) == ("node-1", 52, 7, 3.6)
    assert node.operation("api:checkout") is not None and node.operation("api:checkout").rejected == 7  # type: ignore[union-attr]
    assert data.details == {"limits": {"api:checkout": 15}}


def test_every_v1_event_of_a_recorded_run_decodes() -> None:
    docs = [json.loads(line)["data"] for line in FIXTURE.read_text().splitlines()]
    decoded = [decode(json.dumps(d).encode()) for d in docs]
    assert [d for d in decoded if isinstance(d, InvalidEvent)] == []


@pytest.mark.parametrize("version, reason", [
    (3, "newer than this build reads (2)"),
    (0, "schema version 0 does not exist"),
    ("2", "is not an integer"),
    (True, "is not an integer"),
])
def test_versions_that_cannot_be_read_say_why(version: object, reason: str) -> None:
    raw = json.dumps({"type": "obs.snapshot", "v": version, "run": "r", "source": "s", "data": V1_SNAPSHOT})
    result = decode(raw.encode())
    assert isinstance(result, InvalidEvent) and reason in result.reason


@pytest.mark.parametrize("data", [
    {"subject": "s", "ok": True, "nodes": [1, 2]},
    {"subject": "s", "ok": True, "nodes": "node-1"},
    {"subject": "s", "ok": True, "nodes": [{"node": "n", "url": "u", "status": "sideways"}]},
])
def test_a_hostile_v1_document_is_invalid_never_a_crash(data: dict[str, Any]) -> None:
    result = decode(v1("obs.snapshot", data))
    assert isinstance(result, InvalidEvent)
    assert "obs.snapshot" in result.reason


_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=4)
_VALUES = _SCALARS | st.lists(_SCALARS | st.dictionaries(st.sampled_from(["node", "key", "url", "limit"]), _SCALARS,
                                                         max_size=3), max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["subject", "ok", "nodes", "backend", "counters", "keys", "interval_s"]),
                       _VALUES, max_size=5))
def test_upcasting_arbitrary_v1_documents_never_raises(data: dict[str, Any]) -> None:
    for type_name in ("obs.snapshot", "workload.stats"):
        assert isinstance(decode(v1(type_name, data)), Event | InvalidEvent)


class _Skipped(Payload):
    TYPE = "test.skipped_version"
    VERSION: ClassVar[int] = 3

    @staticmethod
    def upcast_v2_v3(data: dict[str, Any]) -> dict[str, Any]:
        return data


def test_a_missing_step_in_the_chain_is_named() -> None:
    with pytest.raises(UpcastError, match="no upcast_v1_v2"):
        upcasters(_Skipped, 1)
    assert len(upcasters(_Skipped, 2)) == 1 and upcasters(_Skipped, 3) == []

"""The monitor's judge reports transitions, not every evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from events import ObsSnapshot, WorkloadStats
from services.monitor.judge import Judge
from subjects.contract import Invariant, Violation

T0 = datetime(2026, 11, 25, tzinfo=UTC)


class BlindFor2(Invariant):
    """Violated when the last two snapshots both failed (a real rule shape, kept tiny)."""

    name = "observer_blind"  # the subject's own take on the shared rule: the judge adds no second one
    description = "observation failing"
    grace_s = 0.5

    def evaluate(self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]) -> list[Violation]:
        last = list(history)[-2:]
        if len(last) == 2 and not any(s.ok for s in last):
            return [Violation(self.name, "observer", "cannot observe")]
        return []


def snap(i: int, ok: bool) -> ObsSnapshot:
    return ObsSnapshot(subject="s", ok=ok, observed_at=T0 + timedelta(seconds=0.5 * i))


def test_a_violation_starts_once_and_clears_once() -> None:
    judge = Judge([BlindFor2()])
    seen = []
    for i, ok in enumerate([True, False, False, False, True, True]):
        judge.add_snapshot(snap(i, ok))
        t = judge.evaluate(snap(i, ok).observed_at)
        seen.append((len(t.started), len(t.cleared)))
    assert seen == [(0, 0), (0, 0), (1, 0), (0, 0), (0, 1), (0, 0)]


def test_history_is_bounded_by_time() -> None:
    judge = Judge([BlindFor2()], history_s=2.0)
    for i in range(20):
        judge.add_snapshot(snap(i, True))
    assert len(judge.snapshots) == 5


class NeverViolated(Invariant):
    name = "fine"
    description = "always holds"
    grace_s = 0.0

    def evaluate(self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]) -> list[Violation]:
        return []


def test_a_subject_that_forgot_observer_blind_gets_it_all_the_same() -> None:
    judge = Judge([NeverViolated()])
    assert [i.name for i in judge.invariants] == ["fine", "observer_blind"]
    started = []
    for i in range(3):
        judge.add_snapshot(snap(i, False))
        started += judge.evaluate(snap(i, False).observed_at).started
    assert [(a.violation.invariant, a.violation.entity) for a in started] == [("observer_blind", "observer")]

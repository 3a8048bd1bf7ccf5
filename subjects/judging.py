"""Invariant judging that every subject shares: persistence, staleness, blindness.

Grace periods are judged from timestamps in the history (snapshots'
``observed_at``; workload intervals' ``interval_s`` and ``ended_at``), never from
process memory, so a restarted monitor that reloads its history from the log
decides exactly as before.

- **Persistence over a grace period.** A snapshot condition counts as a
  violation only when it held in every usable snapshot of a trailing run of at
  least :data:`MIN_SNAPSHOTS` snapshots spanning at least the invariant's
  ``grace_s`` (:func:`persisting`, :func:`held`, :func:`persistent`; an invariant
  on one such condition is a :class:`SnapshotCondition`, on one per entity an
  :class:`EntityCondition`): with a
  0.5 s cadence two snapshots suffice, a faster observer needs more of them to
  cover the same time, and one unlucky snapshot never opens a ticket. Workload
  conditions need :data:`MIN_INTERVALS` consecutive intervals covering
  ``grace_s`` of traffic (:func:`intervals_held`). The evidence of a condition
  that persisted ends alike whatever the invariant: when it was first seen, for
  how long and over how many snapshots or intervals (:func:`persisted_for`,
  :func:`persisted_for_intervals`).
- **Windows of workload.** Short stats intervals answer fast but each holds few
  requests; a judge that needs a sample size sums the newest intervals covering
  a span (:func:`trailing`): a sliding window, so enough requests back every
  verdict while a fault still shows within one interval of the span being
  filled. Interval lengths are measured (a timer wakes a few ms
  late), so a span counts as covered within :data:`SPAN_SLACK` of it.
- **Error rates.** "At least a share of the operations failed, interval after
  interval" is one judgement whatever the subject (:class:`ErrorRateInvariant`):
  a subject declares its entity, words, evidence keys and minimums, and what
  excuses an interval (a cause another invariant owns).
- **Stale workload stats.** Stats whose newest interval ended more than
  :data:`STALE_S` before the newest snapshot (the load generator stopped) are
  no evidence either way (:func:`recent_workload`, which every
  :class:`WorkloadInvariant` judges by), so a stopped load generator never keeps
  a violation open.
- **Blindness.** Snapshots with ``ok=False`` neither confirm nor refute a
  condition (:func:`usable`: judges skip them, so a condition seen before and
  after a blind spell has persisted through it, and blindness never reads as
  recovery). Blindness itself is :class:`ObserverBlind`, which a subject's
  observer lists (the monitor's judge adds it to any observer that does not).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from events import ObsSnapshot, WorkloadStats
from subjects.contract import Invariant, Violation

T = TypeVar("T")
Item = TypeVar("Item")

MIN_SNAPSHOTS = 2
MIN_INTERVALS = 2
STALE_S = 3.0
"""Workload stats whose newest interval ended this long before the newest snapshot are ignored."""
SPAN_SLACK = 0.02
"""Measured intervals that sum to within 2% of a span cover it: four 0.25 s intervals are a second."""


def ordered(history: Sequence[ObsSnapshot]) -> list[ObsSnapshot]:
    """Snapshots oldest first, by when they were observed."""
    return sorted(history, key=lambda s: s.observed_at)


def usable(history: Sequence[ObsSnapshot]) -> list[ObsSnapshot]:
    """The successful observations, oldest first (blind ones are no evidence)."""
    return [s for s in ordered(history) if s.ok]


def persisting(items: Sequence[Item], pick: Callable[[Item], T | None]) -> list[tuple[Item, T]]:
    """The trailing run of ``items`` in which ``pick`` finds the condition (newest last)."""
    run: list[tuple[Item, T]] = []
    for item in reversed(items):
        found = pick(item)
        if found is None:
            break
        run.append((item, found))
    run.reverse()
    return run


def held(run: Sequence[tuple[ObsSnapshot, Any]], grace_s: float) -> float | None:
    """Seconds a snapshot condition has held, if that satisfies the grace rule, else None."""
    if len(run) < MIN_SNAPSHOTS:
        return None
    seconds = (run[-1][0].observed_at - run[0][0].observed_at).total_seconds()
    return seconds if seconds >= grace_s else None


def persistent(
    snapshots: Sequence[ObsSnapshot], entities: Iterable[str],
    condition: Callable[[ObsSnapshot, str], T | None], grace_s: float,
) -> Iterator[tuple[str, list[tuple[ObsSnapshot, T]], float]]:
    """For each entity whose ``condition`` has held through a trailing run of ``snapshots``
    that satisfies the grace rule: (entity, that run, seconds held)."""
    for entity in entities:
        run = persisting(snapshots, lambda snap, e=entity: condition(snap, e))  # type: ignore[misc]
        seconds = held(run, grace_s)
        if seconds is not None:
            yield entity, run, seconds


def persisted_for(run: Sequence[tuple[ObsSnapshot, Any]], seconds: float, held_as: str) -> dict[str, Any]:
    """The evidence's closing fields for a snapshot condition that persisted through ``run``: when
    it was first seen, ``<held_as>_for_s`` (seconds held, to the millisecond) and how many snapshots."""
    return {
        "since": iso(run[0][0].observed_at),
        f"{held_as}_for_s": round(seconds, 3),
        "snapshots": len(run),
    }


def recent_workload(history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]) -> list[WorkloadStats]:
    """The workload stats worth judging: all of them, oldest first, unless they went stale.

    Stale = the newest interval ended more than :data:`STALE_S` before the newest
    snapshot (the load generator stopped); then there is no evidence: ``[]``.
    Stats without ``ended_at`` cannot be judged stale and are taken as they come.
    """
    stats = list(workload)
    if not stats:
        return []
    if all(s.ended_at is not None for s in stats):
        stats.sort(key=lambda s: s.ended_at)  # type: ignore[arg-type,return-value]
    newest = stats[-1].ended_at
    if newest is not None and history:
        observed = max(s.observed_at for s in history)
        if newest < observed - timedelta(seconds=STALE_S):
            return []
    return stats


def intervals_held(run: Sequence[tuple[WorkloadStats, Any]], grace_s: float) -> float | None:
    """Seconds of traffic a workload condition has held over, if that satisfies the grace rule, else None."""
    if len(run) < MIN_INTERVALS:
        return None
    seconds = sum(s.interval_s for s, _ in run)
    return seconds if covers(seconds, grace_s) else None


def persisted_for_intervals(run: Sequence[tuple[WorkloadStats, Any]], seconds: float,
                            held_as: str) -> dict[str, Any]:
    """The evidence's closing fields for a workload condition that held through ``run``: how many
    intervals, when the first began and ``<held_as>_for_s`` (seconds of traffic, to the millisecond)."""
    return {
        "intervals": len(run),
        "since": since(run),
        f"{held_as}_for_s": round(seconds, 3),
    }


def covers(seconds: float, span_s: float) -> bool:
    """Whether ``seconds`` of measured intervals cover ``span_s`` (within :data:`SPAN_SLACK`)."""
    return seconds >= span_s * (1 - SPAN_SLACK)


def trailing(stats: Sequence[WorkloadStats], span_s: float) -> list[WorkloadStats] | None:
    """The newest intervals of ``stats`` (given oldest first), as few as cover ``span_s``; None when
    the whole history is shorter than that."""
    total = 0.0
    for i in range(len(stats) - 1, -1, -1):
        total += stats[i].interval_s
        if covers(total, span_s):
            return list(stats[i:])
    return None


def interval_start(stats: WorkloadStats) -> datetime | None:
    return stats.ended_at - timedelta(seconds=stats.interval_s) if stats.ended_at is not None else None


def since(run: Sequence[tuple[WorkloadStats, Any]]) -> str | None:
    """When the first interval of a workload run began (ISO), if known."""
    return iso(interval_start(run[0][0])) if run else None


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class SnapshotCondition(Invariant, Generic[T]):
    """An invariant on one condition of the snapshots: violated (once) when :meth:`condition` finds it in
    every snapshot of a trailing run that satisfies the grace rule (:func:`persisting`, :func:`held`);
    :meth:`violation` describes that run."""

    judges_blind: ClassVar[bool] = False
    """Whether failed observations (``ok=False``) are judged too, for a condition they still show; by
    default they are skipped (no evidence either way, so the condition persists through them)."""

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        run = persisting(self.judged(history), self.condition)
        seconds = held(run, self.grace_s)
        return [] if seconds is None else [self.violation(run, seconds)]

    def judged(self, history: Sequence[ObsSnapshot]) -> list[ObsSnapshot]:
        """The snapshots the condition is looked for in, oldest first (see :attr:`judges_blind`)."""
        return ordered(history) if self.judges_blind else usable(history)

    @abc.abstractmethod
    def condition(self, snap: ObsSnapshot, /) -> T | None:
        """What the condition finds in ``snap``; None where it does not hold."""

    @abc.abstractmethod
    def violation(self, run: list[tuple[ObsSnapshot, T]], seconds: float, /) -> Violation:
        """The violation, from the run the condition held through (oldest first: the newest snapshot and
        what was found in it last) and the seconds it held."""


class EntityCondition(Invariant, Generic[T]):
    """An invariant on one condition of each entity the newest usable snapshot lists (a store, a member):
    violated for each entity whose :meth:`condition` held in every usable snapshot of a trailing run that
    satisfies the grace rule (:func:`persistent`). :meth:`violation` describes the entity's run."""

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        good = usable(history)
        if not good:
            return []
        found = persistent(good, self.entities(good[-1]), self.condition, self.grace_s)
        return [self.violation(entity, run, seconds) for entity, run, seconds in found]

    @abc.abstractmethod
    def entities(self, newest: ObsSnapshot, /) -> Iterable[str]:
        """The entities judged, as ``newest`` (the newest usable snapshot) lists them."""

    @abc.abstractmethod
    def condition(self, snap: ObsSnapshot, entity: str, /) -> T | None:
        """What the condition finds of ``entity`` in ``snap``; None where it does not hold."""

    @abc.abstractmethod
    def violation(self, entity: str, run: list[tuple[ObsSnapshot, T]], seconds: float, /) -> Violation:
        """The violation for ``entity``, from the run its condition held through (oldest first: the
        newest snapshot and what was found in it last) and the seconds it held."""


class WorkloadInvariant(Invariant):
    """An invariant on what the workload's clients experienced: it judges the recent stats only
    (:func:`recent_workload`), and finds nothing when there are none (stale stats are no evidence)."""

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        stats = recent_workload(history, workload)
        return self.judge(stats, history) if stats else []

    @abc.abstractmethod
    def judge(self, stats: list[WorkloadStats], history: Sequence[ObsSnapshot]) -> list[Violation]:
        """Violations now, given the recent workload stats (oldest first, at least one) and the snapshots
        (oldest first: for what they explain, such as an outage that the clients' failures belong to)."""


class ErrorRateInvariant(WorkloadInvariant):
    """An invariant on the share of the workload's operations that failed.

    Violated (once, entity :attr:`entity`) when, in each interval of a trailing run that satisfies
    the grace rule (:func:`persisting`, :func:`intervals_held`), at least :attr:`threshold` of the
    operations sent failed (and at least one did; the interval's totals,
    :meth:`WorkloadStats.totals`), and at least :attr:`min_errors` failed over that run and
    :attr:`min_sent` were sent: over the run, or (:attr:`min_sent_per_interval`) in each of its
    intervals. An interval that :meth:`excused` explains (its failures belong to a cause another
    invariant owns) breaks the run. Summary: ``<errors> of <sent> <counted> failed over <s>s``, then
    `` (<ratio>%)`` if :attr:`summary_ratio`. Evidence: ``sent``, ``errors``, ``error_ratio``,
    ``threshold``, the newest interval's errors per operation (key :attr:`operations_key`) and per
    node (key :attr:`nodes_key`), the persisted-for fields (``intervals``, ``since``,
    ``failing_for_s``), then :meth:`extra_evidence`.
    """

    entity: ClassVar[str]
    """The violation's entity (``checks``, ``kv``)."""
    counted: ClassVar[str]
    """What the summary calls the operations (``rate checks``)."""
    summary_ratio: ClassVar[bool] = False
    """Whether the summary ends with the error ratio as a percentage."""
    threshold: ClassVar[float] = 0.10
    """The share of the operations sent that failed, in each interval of the run."""
    min_sent: ClassVar[int] = 0
    """Operations sent at least, over the run (or in each interval: :attr:`min_sent_per_interval`)."""
    min_sent_per_interval: ClassVar[bool] = False
    """Whether :attr:`min_sent` holds of each interval of the run rather than of the run's sum."""
    min_errors: ClassVar[int] = 0
    """Operations failed at least, over the run."""
    operations_key: ClassVar[str] = "operations"
    """The evidence key of the newest interval's errors per operation."""
    nodes_key: ClassVar[str] = "nodes"
    """The evidence key of the newest interval's errors per node."""

    def excused(self, history: Sequence[ObsSnapshot]) -> Callable[[WorkloadStats], bool] | None:
        """Which intervals' failures are not this invariant's, judged from ``history`` (snapshots,
        oldest first); None (the default): every interval's are."""
        return None

    def extra_evidence(self, history: Sequence[ObsSnapshot]) -> dict[str, Any]:
        """Evidence from the snapshots added after the rest (default: none)."""
        return {}

    def summary(self, sent: int, errors: int, seconds: float) -> str:
        text = f"{errors} of {sent} {self.counted} failed over {seconds:.1f}s"
        return f"{text} ({errors / sent:.0%})" if self.summary_ratio else text

    def judge(self, stats: list[WorkloadStats], history: Sequence[ObsSnapshot]) -> list[Violation]:
        excused = self.excused(history)

        def failing(s: WorkloadStats) -> tuple[int, int] | None:
            if excused is not None and excused(s):
                return None
            # The interval's totals: the operations' (logical requests, after any failover), the nodes' only
            # for a producer that reports no operations (the sole counts it has; without them this invariant
            # would be blind to it). The rate limiter and TiKV always report operations (every key, zeros
            # included; put and get), so for them this is the operations' sum it always was.
            totals = s.totals()
            sent, errors = totals.sent, totals.errors
            if errors == 0 or errors < self.threshold * sent:
                return None
            if self.min_sent_per_interval and sent < self.min_sent:
                return None
            return sent, errors

        run = persisting(stats, failing)
        seconds = intervals_held(run, self.grace_s)
        if seconds is None:
            return []
        sent, errors = sum(x[0] for _, x in run), sum(x[1] for _, x in run)
        if errors < self.min_errors or (not self.min_sent_per_interval and sent < self.min_sent):
            return []
        last = run[-1][0]
        evidence: dict[str, Any] = {
            "sent": sent,
            "errors": errors,
            "error_ratio": round(errors / sent, 3),
            "threshold": self.threshold,
            self.operations_key: {o.name: o.errors for o in last.operations if o.errors},
            self.nodes_key: {n.node: n.errors for n in last.nodes if n.errors},
            **persisted_for_intervals(run, seconds, "failing"),
            **self.extra_evidence(history),
        }
        return [Violation(self.name, self.entity, self.summary(sent, errors, seconds), evidence)]


class ObserverBlind(SnapshotCondition[ObsSnapshot]):
    """The observer can see the subject.

    Fires (entity ``observer``) when the trailing run of failed observations
    (``ok=False``) is at least 2 snapshots long: a single failure may be a
    blip, two in a row at the monitor's 0.25 s cadence is a quarter second
    of blindness or more, within the detection target. No extra time grace: failing
    observations are already slow (each may wait for a timeout). A blind
    observer is never "healthy".
    """

    name = "observer_blind"
    description = "the monitor can observe the subject (a failed observation is never read as healthy)"
    grace_s = 0.0

    judges_blind = True  # the failed observations are the evidence here

    def condition(self, snap: ObsSnapshot) -> ObsSnapshot | None:
        return snap if not snap.ok else None

    def violation(self, run: list[tuple[ObsSnapshot, ObsSnapshot]], seconds: float) -> Violation:
        first, last = run[0][0], run[-1][0]
        evidence = {
            "error": last.error,
            "since": iso(first.observed_at),
            "failures": len(run),
            "blind_for_s": round(seconds, 3),
        }
        return Violation(self.name, "observer", f"observation failing: {last.error}", evidence)

"""The invariants on each key's sliding window: ``over_limit``, ``future_dated_entries``, ``limit_policy_drift``.

Each judges one condition on a key's counter (as the observer read it from
Redis) and fires per key (entity: the policy key) when the condition held in
every usable snapshot of a trailing run of at least 2 snapshots spanning at
least the invariant's ``grace_s`` (:class:`KeyInvariant`). The evidence is the
key, the counter's own fields, then ``since``, ``<condition>_for_s`` and ``snapshots``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar

from events import ObsSnapshot, WorkloadStats
from subjects.contract import Invariant, Violation
from subjects.judging import persisted_for, usable
from subjects.ratelimiter.details import CounterView
from subjects.ratelimiter.invariants.snapshots import counter_of, per_key

T = TypeVar("T")


class KeyInvariant(Invariant, Generic[T]):
    """A condition on each key's counter: a violation (entity: the key) for each key where :meth:`found`
    finds it in every usable snapshot of a run that persisted past ``grace_s``.

    :meth:`describe` turns what was found in the newest snapshot of the run into the evidence's own
    fields and the summary; the evidence starts with the ``key`` and ends with :func:`persisted_for`'s
    fields (``<held_as>_for_s``).
    """

    held_as: ClassVar[str]
    """The condition's name in the evidence's ``<held_as>_for_s``."""

    def evaluate(
        self, history: Sequence[ObsSnapshot], workload: Sequence[WorkloadStats]
    ) -> list[Violation]:
        good = usable(history)
        out = []
        for key, run, seconds in per_key(good, lambda snap, view: self.found(good, snap, view), self.grace_s):
            fields, summary = self.describe(run[-1][1])
            evidence = {"key": key, **fields, **persisted_for(run, seconds, self.held_as)}
            out.append(Violation(self.name, key, summary, evidence))
        return out

    @abc.abstractmethod
    def found(self, good: Sequence[ObsSnapshot], snap: ObsSnapshot, view: CounterView, /) -> T | None:
        """What the condition finds in ``view``, the key's counter in ``snap``; None where it does not hold.
        ``good`` holds every usable snapshot (oldest first), for a condition that looks back."""

    @abc.abstractmethod
    def describe(self, found: T, /) -> tuple[dict[str, Any], str]:
        """The evidence's own fields (after the key) and the summary, from what :meth:`found` found."""


class OverLimit(KeyInvariant[tuple[CounterView, int]]):
    """No key's window holds more requests than its limit (beyond a tolerance).

    The limiter admits a request only while ``count + cost <= limit``, so a
    correct window never exceeds its limit. Fires for a key whose present-dated
    entries (``count - future_entries``: future-dated ones are
    ``future_dated_entries``) exceed ``ceiling * (1 + tolerance)`` in every
    usable snapshot of a trailing run of at least 2 snapshots spanning at least
    ``grace_s`` = 0.2 s (same reasoning as ``node_down``). ``ceiling`` is the
    highest limit in force during the last window (a window filled under a
    higher limit legitimately holds it until its entries age out, one window
    later, when the limit is lowered); tolerance 0.1 covers observation skew.
    Entity: the policy key.
    """

    name = "over_limit"
    description = "every key's sliding window holds no more requests than its limit (10% tolerance)"
    grace_s = 0.2
    held_as = "over"
    tolerance = 0.1

    def found(self, good: Sequence[ObsSnapshot], snap: ObsSnapshot,
              view: CounterView) -> tuple[CounterView, int] | None:
        """The counter and its ceiling, when its present-dated entries exceed the ceiling (with tolerance)."""
        top = _ceiling(good, snap, view)
        return None if view.count - view.future_entries <= top * (1 + self.tolerance) else (view, top)

    def describe(self, found: tuple[CounterView, int]) -> tuple[dict[str, Any], str]:
        view, top = found
        return {
            "count": view.count,
            "limit": view.limit,
            "ceiling": top,
            "future_entries": view.future_entries,
            "window_s": view.window_s,
            "tolerance": self.tolerance,
        }, f"key {view.key} holds {view.count} requests against a limit of {view.limit}"


def _ceiling(good: Sequence[ObsSnapshot], snap: ObsSnapshot, view: CounterView) -> int:
    """The highest limit of ``view``'s key in force during the window that ends at ``snap``."""
    start = snap.observed_at - timedelta(seconds=view.window_s)
    limits = [c.limit for s in good if start <= s.observed_at <= snap.observed_at
              if (c := counter_of(s, view.key)) is not None]
    return max([view.limit, *limits])


class FutureDatedEntries(KeyInvariant[CounterView]):
    """No key's window holds entries dated in the future.

    The limiter scores entries with Redis time, so a future-dated entry comes
    from a writer with a clock far ahead (or a bug): it never ages out of the
    window and counts against the key until removed, blocking real traffic.
    Any such entry is wrong, so the threshold is 1, held in every usable
    snapshot of a trailing run of at least 2 snapshots spanning at least
    ``grace_s`` = 0.2 s (as ``node_down``). Entity: the policy key. The
    evidence says whether the key also reads over its limit because of them.
    """

    name = "future_dated_entries"
    description = "no key's sliding window holds entries dated in the future (no correct writer makes them)"
    grace_s = 0.2
    held_as = "future_dated"

    def found(self, good: Sequence[ObsSnapshot], snap: ObsSnapshot, view: CounterView) -> CounterView | None:
        return view if view.future_entries > 0 else None

    def describe(self, view: CounterView) -> tuple[dict[str, Any], str]:
        return {
            "count": view.count,
            "limit": view.limit,
            "future_entries": view.future_entries,
            "over_limit": view.count > view.limit,
            "window_s": view.window_s,
        }, (f"key {view.key} holds {view.future_entries} entries dated in the future "
            f"({view.count} counted against a limit of {view.limit})")


class LimitPolicyDrift(KeyInvariant[CounterView]):
    """Every key's limit in force equals the lab's declared policy.

    The declared policy is configuration; a live limit that differs from it
    (changed through the management API, by hand or by a bad deploy) lets
    abuse through or blocks legitimate clients. Any difference counts (limits
    are exact integers), held in every usable snapshot of a trailing run of at
    least 2 snapshots spanning at least ``grace_s`` = 0.2 s (as ``node_down``:
    one odd read never fires it). Keys without a declared limit are not judged.
    Entity: the policy key.
    """

    name = "limit_policy_drift"
    description = "every key's limit in force equals the declared policy"
    grace_s = 0.2
    held_as = "drifted"

    def found(self, good: Sequence[ObsSnapshot], snap: ObsSnapshot, view: CounterView) -> CounterView | None:
        return None if view.declared_limit is None or view.limit == view.declared_limit else view

    def describe(self, view: CounterView) -> tuple[dict[str, Any], str]:
        return {
            "limit": view.limit,
            "declared_limit": view.declared_limit,
            "window_s": view.window_s,
        }, f"key {view.key} is limited to {view.limit} but the policy declares {view.declared_limit}"

"""Readers of a rate limiter snapshot that the invariants share.

Each takes what the observer recorded in the snapshot's details and never
raises: details that do not validate read as empty (:mod:`subjects.ratelimiter.details`),
so a key or a backend reading that is absent is ``None`` here.

- Counters: the newest snapshot's keys are the ones judged (:func:`judged_keys`),
  and :func:`per_key` finds the keys whose condition on their counter persisted
  past a grace period (the shared rule of :func:`subjects.judging.persistent`).
- The backend (Redis) as observed: :func:`store_unavailable` (it does not serve
  the limiter) and :func:`store_refusing_writes` (it did not take the observer's
  write), the two readings the inhibition rules rest on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from events import ObsSnapshot
from subjects.judging import ordered, persistent
from subjects.ratelimiter.details import CounterView, StoreHealth, snapshot_details

T = TypeVar("T")


def counter_of(snap: ObsSnapshot, key: str) -> CounterView | None:
    """``key``'s counter in ``snap``, if the observer read it."""
    return snapshot_details(snap).counter(key)


def judged_keys(snapshots: Sequence[ObsSnapshot]) -> list[str]:
    """The keys of the newest snapshot: the ones judged."""
    return [c.key for c in snapshot_details(snapshots[-1]).counters] if snapshots else []


def per_key(snapshots: Sequence[ObsSnapshot], condition: Callable[[ObsSnapshot, CounterView], T | None],
            grace_s: float) -> list[tuple[str, list[tuple[ObsSnapshot, T]], float]]:
    """(key, run, seconds held) for each key whose ``condition`` on its counter persisted past the grace.

    A snapshot without the key's counter breaks its run (the condition is not seen there).
    """
    def on_key(snap: ObsSnapshot, key: str) -> T | None:
        view = counter_of(snap, key)
        return None if view is None else condition(snap, view)

    return list(persistent(snapshots, judged_keys(snapshots), on_key, grace_s))


# -- the backend's state, as observed ------------------------------------------------


def backend_of(snap: ObsSnapshot) -> StoreHealth | None:
    """Redis as the observer found it in ``snap`` (None: no backend reading)."""
    return snapshot_details(snap).backend


def newest_backend(history: Sequence[ObsSnapshot]) -> StoreHealth | None:
    """The newest backend reading of ``history`` (blind snapshots included: they may still carry one)."""
    found = [b for s in ordered(history) if (b := backend_of(s)) is not None]
    return found[-1] if found else None


def store_unavailable(snap: ObsSnapshot) -> str | None:
    """Why Redis does not serve the limiter in ``snap`` (reads failed, or a write timed out), else None.

    A refused write (out of memory, read-only) is an *answer*, not unavailability:
    it shows as failing checks (``error_rate``) instead.
    """
    backend = backend_of(snap)
    if backend is None:
        return None
    if backend.info.get("reads") == "failed":
        return f"reads fail: {backend.error or snap.error or 'no answer'}"
    if backend.info.get("write_probe") in ("timeout", "paused"):
        return backend.write_error or "a write timed out"
    return None


def store_refusing_writes(snap: ObsSnapshot) -> bool:
    """Redis did not accept the observer's write (any reason) or could not be read at all."""
    backend = backend_of(snap)
    return backend is not None and (backend.info.get("reads") == "failed" or backend.writable is False)

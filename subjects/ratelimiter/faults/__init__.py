"""Real faults for the rate limiter, each with proof of effect and an idempotent undo.

By what they break: one node (:mod:`.nodes`: ``node_kill``, ``ghost_allowing``),
one policy key (:mod:`.keys`: ``counter_drift``, ``limit_misconfig``), Redis
itself (:mod:`.store`: ``redis_pause``, ``redis_oom``), and the control case that
breaks nothing (:mod:`.burst`: ``hot_key_burst``). Each module's docstring gives
its faults' injection, proof and undo; :mod:`.base` holds what they share.

``undo_for_target`` (for a chaos service that died mid-injection, before the
undo was recorded) derives an undo from the target alone where it can: start
the node, clear the node's hook, unpause, restore the *declared* memory
configuration or limit (the values before are unknown). ``counter_drift``
cannot (its undo names the exact entries it wrote; the ``future_dated_entries``
invariant surfaces them and ``prune_counter`` removes them).

Targets outside the lab (unknown node or key; anything but ``redis`` for the
server faults) and bad parameters raise :class:`RefusedError` or a pydantic
ValidationError before anything is touched. Reverting twice is harmless.
"""

from __future__ import annotations

from subjects.ratelimiter.faults.base import RateLimiterFault
from subjects.ratelimiter.faults.burst import MAX_BURST_RATE, BurstParams, HotKeyBurst, KeyBurst
from subjects.ratelimiter.faults.keys import CounterDrift, DriftParams, LimitMisconfig, MisconfigParams
from subjects.ratelimiter.faults.nodes import GhostAllowing, NodeKill
from subjects.ratelimiter.faults.store import OomParams, PauseParams, RedisOom, RedisPause

__all__ = [
    "FAULT_TYPES",
    "MAX_BURST_RATE",
    "BurstParams",
    "CounterDrift",
    "DriftParams",
    "GhostAllowing",
    "HotKeyBurst",
    "KeyBurst",
    "LimitMisconfig",
    "MisconfigParams",
    "NodeKill",
    "OomParams",
    "PauseParams",
    "RateLimiterFault",
    "RedisOom",
    "RedisPause",
]

FAULT_TYPES: tuple[type[RateLimiterFault], ...] = (
    NodeKill, CounterDrift, GhostAllowing, RedisPause, RedisOom, LimitMisconfig, HotKeyBurst)
"""The catalogue, in the order ``oplab subjects`` and ``chaos list`` show it."""

"""The rate limiter subject: N stateless HTTP nodes sharing one Redis.

- ``node``: the node service (``python -m subjects.ratelimiter.node``).
- ``limiter`` + ``window.lua``: the sliding-window log and every operation on the shared state.
- ``backend``: the few fixed server operations on Redis (INFO, write probe, pause, memory limit).
- ``adapter``: :class:`RateLimiterAdapter` (observe, invariants, tools, faults, playbooks), with
  ``invariants``, ``tools``, ``faults`` and ``playbooks`` in modules of their own.
- ``workload``: :class:`RateLimiterWorkload`, realistic client traffic.
- ``settings``: :class:`RateLimiterSettings` (env prefix ``OPLAB_RL_``).
"""

from subjects.ratelimiter.adapter import RateLimiterAdapter
from subjects.ratelimiter.settings import RateLimiterSettings
from subjects.ratelimiter.workload import RateLimiterWorkload

__all__ = ["RateLimiterAdapter", "RateLimiterSettings", "RateLimiterWorkload"]

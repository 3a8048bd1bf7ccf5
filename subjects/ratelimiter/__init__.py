"""The rate limiter subject: N stateless HTTP nodes sharing one Redis.

The system itself:

- ``node``: the node service (``python -m subjects.ratelimiter.node``);
- ``limiter`` + ``window.lua``: the sliding-window log and every operation on the shared state;
- ``backend``: the few fixed server operations on Redis (INFO, write probe, pause, memory limit);
- ``control``: the nodes' processes through supervisord;
- ``settings``: :class:`RateLimiterSettings` (env prefix ``OPLAB_RL_``).

The lab's view of it, one module per role (see :mod:`subjects.contract`):

- ``cluster``: :class:`RateLimiterCluster`, the one object the roles act through;
- ``observer`` + ``invariants`` + ``details`` (monitor); ``toolbox`` + ``tools`` + ``playbooks`` (agent);
  ``fault_kit`` + ``faults`` (chaos); ``workload`` (loadgen); ``provisioner`` + ``valkey`` (launcher);
  ``console_rows`` (console); ``scenarios/`` (director);
- ``subject``: :class:`RateLimiterSubject`, registered as the ``ratelimiter`` entry point.
"""

"""Systems under test, as plug-ins.

- ``contract``: the roles a subject offers the lab's services (observer, toolbox,
  fault kit, workload, provisioner, console rows) and the :class:`Subject` that
  hands them out;
- ``judging``: invariant judging every subject shares (grace periods, stale
  workload stats, ``observer_blind``);
- ``registry``: subjects by name, from the ``operator_lab.subjects`` entry points;
- ``ratelimiter``: the rate limiter, registered like any user's package.
"""

"""The TiKV subject: PD and TiKV stores, observed through PD's HTTP API and the stores' status ports,
broken through their containers (or local processes), probed through a real raw-KV client.

- ``settings``: :class:`TiKVSettings` (env prefix ``OPLAB_TIKV_``);
- ``pd``: PD's HTTP API and its response shapes; ``control``: the processes (Docker, supervisord);
- ``cluster``: :class:`TiKVCluster`, the one object the roles act through;
- ``observer`` + ``invariants`` + ``details`` (monitor); ``toolbox`` + ``tools`` + ``playbooks`` (agent);
  ``fault_kit`` + ``faults`` (chaos); ``workload`` (loadgen, the prober); ``provisioner`` (launcher);
  ``console_rows`` (console); ``scenarios/`` (director);
- ``subject``: :class:`TiKVSubject`, registered as the ``tikv`` entry point.
"""

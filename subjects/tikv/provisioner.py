"""TiKV's provisioner (the launcher's role): TiKV always runs elsewhere.

- With ``OPLAB_TIKV_PD_URL`` set, the cluster is external: the lab's services connect to
  it with the ``OPLAB_TIKV_*`` settings of this environment (PD, how the stores are
  controlled), and nothing is started locally.
- Without it, TiKV is the compose project's (profile ``tikv`` of the repository's
  ``docker-compose.yml``: the stores advertise addresses that resolve only inside the
  compose network, so the lab's services run there too). The launcher checks within
  seconds that a Docker engine answers (else: a clear error naming Docker) and hands
  it the project to bring up.
"""

from __future__ import annotations

import os
from pathlib import Path

from subjects.contract import ComposeProject, Deployment, Provisioner, Site
from subjects.tikv.settings import TiKVSettings

COMPOSE_HINT = ("`docker compose --profile tikv up -d`, then `docker compose run --rm console` (the README's TiKV "
                "section), or set OPLAB_TIKV_PD_URL to a cluster the lab can reach")


def docker_answers(timeout_s: float = 3.0) -> str | None:
    """None if a Docker engine answers (``DOCKER_HOST`` or the default socket), else why not."""
    try:
        import docker

        client = docker.from_env(timeout=int(max(1, timeout_s)))
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # the SDK raises DockerException, requests' errors, OSError...
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
    return None


class TiKVProvisioner(Provisioner):
    def plan(self, site: Site) -> Deployment:
        if "OPLAB_TIKV_PD_URL" in os.environ:
            settings = TiKVSettings()  # validates what the services will read
            env = {k: v for k, v in os.environ.items() if k.startswith("OPLAB_TIKV_")}
            return Deployment(env=env, endpoints={"pd": settings.pd_url})
        where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        problem = docker_answers()
        if problem is not None:
            raise ValueError(f"TiKV runs under Docker Compose, and no Docker engine answers at {where} ({problem}). "
                             f"Start Docker, then {COMPOSE_HINT}")
        file = Path.cwd() / "docker-compose.yml"
        if not file.exists():
            raise ValueError(f"TiKV runs under Docker Compose: run this from the repository's root (no {file})")
        return Deployment(env={}, compose=ComposeProject(file=file, profile="tikv", run_variable="OPLAB_TIKV_RUN"),
                          endpoints={"compose": f"{file} (profile tikv)"})

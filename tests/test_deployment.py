"""The compose file and image wiring agree with the code (no Docker engine needed to check this)."""

from __future__ import annotations

import configparser
import importlib.util
from pathlib import Path

import yaml

from oplab.supervisor import SERVICES

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_every_service_with_its_endpoints_from_the_environment() -> None:
    services = compose()["services"]
    for name in SERVICES:
        assert name in services, f"{name} missing from docker-compose.yml"
        command = services[name]["command"]
        assert command[:2] == ["python", "-m"] and importlib.util.find_spec(command[2]) is not None
        env = services[name]["environment"]
        for key in ("NATS_URL", "OPLAB_RUN", "OPLAB_SUBJECT"):
            assert env.get(key), f"{name} lacks {key}"
        assert env["OPLAB_SUBJECT"] == "ratelimiter" and services[name]["profiles"] == ["ratelimiter"]
        # the rate limiter's own endpoints, as its provisioner gives them to a local run
        for key in ("OPLAB_RL_REDIS_URL", "OPLAB_RL_NODES", "OPLAB_RL_SUPERVISOR_URL", "OPLAB_RL_KEY_PREFIX"):
            assert env.get(key), f"{name} lacks {key}"
    # NATS runs on the users and JetStream store nats-auth writes into its config (oplab/nats_auth.py)
    assert services["nats"]["command"] == ["-c", "/auth/${OPLAB_NATS_CONF:-nats.conf}"]
    assert "nats-data:/data" in services["nats"]["volumes"]
    assert services["nats-auth"]["command"] == ["oplab", "nats-auth", "/auth", "--store", "/data"]
    assert services["nats"]["depends_on"] == {"nats-auth": {"condition": "service_completed_successfully"}}
    assert services["console"]["profiles"] == ["console"]


def test_the_ratelimiter_container_runs_the_nodes_the_services_expect() -> None:
    services = compose()["services"]
    expected = dict(item.split("=", 1) for item in services["agent"]["environment"]["OPLAB_RL_NODES"].split(","))
    conf = configparser.RawConfigParser()
    conf.read(ROOT / "deploy" / "ratelimiter-supervisord.conf")
    programs = {s.split(":", 1)[1]: conf[s]["command"] for s in conf.sections() if s.startswith("program:")}
    assert set(programs) == set(expected)
    for node, url in expected.items():
        assert f"--id {node}" in programs[node] and f"--url {url}" in programs[node]
        assert conf[f"program:{node}"]["autorestart"] == "false", "a killed node must stay down"


def test_published_ports_bind_to_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_host_ports_come_from_variables() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            host = str(port).split(":")[1]
            assert host.startswith("${OPLAB_"), f"{name} publishes a fixed host port ({port})"


def test_every_service_is_healthchecked_and_starts_after_what_it_needs_is_healthy() -> None:
    services = compose()["services"]
    one_shot = {"nats-auth"}  # runs to completion before NATS starts
    for name, service in services.items():
        if "console" in service.get("profiles", []):
            assert service["healthcheck"] == {"disable": True}  # a one-off, not a service
            continue
        if name in one_shot:
            assert service["restart"] == "no"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for needed, how in (service.get("depends_on") or {}).items():
            if needed in one_shot:
                assert how["condition"] == "service_completed_successfully"
                continue
            assert how["condition"] == "service_healthy", f"{name} starts before {needed} is healthy"
            assert services[needed].get("healthcheck", {}).get("test"), f"{needed} cannot become healthy"
    lab = [n for n, s in services.items() if s.get("command", [None])[:2] == ["python", "-m"]]
    assert lab and all(services[n]["environment"]["OPLAB_READY_FILE"] == "/tmp/oplab-ready" for n in lab)
    # each lab service connects as its own NATS user, from the volume only the lab's containers mount
    for n in [*lab, "console"]:
        assert services[n]["environment"]["OPLAB_NATS_AUTH_DIR"] == "/auth", n
        assert "nats-auth:/auth:ro" in services[n]["volumes"], n
    assert set(services["director"]["depends_on"]) >= {"monitor", "chaos", "agent", "loadgen", "ratelimiter"}


def test_the_cluster_profile_runs_three_nats_servers_and_gives_the_services_all_three() -> None:
    services = compose()["services"]
    for n in (2, 3):
        member = services[f"nats-{n}"]
        assert member["profiles"] == ["cluster"] and member["command"] == ["-c", f"/auth/nats-cluster-{n}.conf"]
        assert member["healthcheck"] == services["nats"]["healthcheck"]
    assert services["nats"]["command"] == ["-c", "/auth/${OPLAB_NATS_CONF:-nats.conf}"]
    env = dict(line.split("=", 1) for line in (ROOT / "deploy" / "cluster.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["OPLAB_NATS_CONF"] == "nats-cluster-1.conf" and env["OPLAB_STREAM_REPLICAS"] == "3"
    assert env["OPLAB_NATS_SERVERS"].split(",") == [f"nats://{h}:4222" for h in ("nats", "nats-2", "nats-3")]
    assert "cluster" in env["COMPOSE_PROFILES"].split(",")
    assert services["monitor"]["environment"]["NATS_URL"] == "${OPLAB_NATS_SERVERS:-nats://nats:4222}"


def test_compose_gives_the_services_what_the_subjects_provisioner_gives_a_local_run(tmp_path: Path) -> None:
    from subjects.contract import Site
    from subjects.registry import load_subject

    site = Site(run="r-test", home=tmp_path, python="python", supervisor_url="http://lab:pw@127.0.0.1:9",
                free_port=iter(range(20000, 20100)).__next__)
    local = load_subject("ratelimiter").provisioner().plan(site)
    env = compose()["services"]["monitor"]["environment"]
    assert set(local.env) <= set(env), f"compose lacks {set(local.env) - set(env)}"


TIKV_CLUSTER = ("pd0", "tikv1", "tikv2", "tikv3")
TIKV_LAB = ("tikv-monitor", "tikv-chaos", "tikv-agent", "tikv-loadgen", "tikv-director", "tikv-projector")


def test_the_tikv_profile_pins_pd_and_three_stores_with_healthchecks_and_volumes() -> None:
    services = compose()["services"]
    for name in TIKV_CLUSTER:
        service = services[name]
        assert service["profiles"] == ["tikv"], name
        image, tag = service["image"].rsplit(":", 1)
        assert image in ("pingcap/pd", "pingcap/tikv") and tag.startswith("v8.5."), service["image"]
        assert service["healthcheck"]["test"], name
        assert any(v.split(":")[0] in compose()["volumes"] for v in service["volumes"]), name
    assert {services[n]["image"].rsplit(":", 1)[1] for n in TIKV_CLUSTER} == {"v8.5.2"}  # one version
    for n in ("tikv1", "tikv2", "tikv3"):
        command = " ".join(services[n]["command"])
        assert f"--advertise-addr={n}:20160" in command and f"--advertise-status-addr={n}:20180" in command
        assert services[n]["depends_on"]["pd0"]["condition"] == "service_healthy"
    pd_config = (ROOT / "deploy" / "tikv" / "pd.toml").read_text()
    assert 'max-store-down-time = "30s"' in pd_config  # seconds, not PD's default 30 minutes
    assert "--config=/etc/pd/pd.toml" in services["pd0"]["command"]


def test_the_tikv_lab_runs_beside_its_cluster_and_only_chaos_and_the_agent_reach_docker() -> None:
    services = compose()["services"]
    for name in TIKV_LAB:
        service = services[name]
        env = service["environment"]
        assert service["profiles"] == ["tikv"] and env["OPLAB_SUBJECT"] == "tikv", name
        assert env["OPLAB_TIKV_PD_URL"] == "http://pd0:2379" and env["OPLAB_TIKV_CONTROL"] == "docker"
        # the project's own name, whatever COMPOSE_PROJECT_NAME makes it
        project = f"${{COMPOSE_PROJECT_NAME:-{compose()['name']}}}"
        assert (env["OPLAB_TIKV_COMPOSE_PROJECT"], env["OPLAB_TIKV_NETWORK"]) == (project, f"{project}_default")
        assert all(service["depends_on"][s]["condition"] == "service_healthy" for s in ("tikv1", "tikv2", "tikv3"))
        assert ("DOCKER_HOST" in env) == (name in ("tikv-chaos", "tikv-agent")), name
    assert services["tikv-chaos"]["environment"]["DOCKER_HOST"] == "tcp://docker-proxy:2375"
    proxy = services["docker-proxy"]
    assert proxy["volumes"] == ["/var/run/docker.sock:/var/run/docker.sock:ro"]
    allowed = {k for k, v in proxy["environment"].items() if v == 1}
    assert allowed == {"CONTAINERS", "NETWORKS", "POST", "ALLOW_START", "ALLOW_RESTARTS"}
    assert all(services[n].get("profiles") for n in services if n not in ("nats", "nats-auth")), \
        "every subject has its profile"
    assert (ROOT / ".env").read_text().count("COMPOSE_PROFILES=ratelimiter") == 1


def test_docker_compose_accepts_the_tikv_profile() -> None:
    """`docker compose --profile tikv config`, where the compose CLI exists (no engine needed)."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("docker") is None:
        pytest.skip("no docker CLI here: the structure is checked above")
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
    if plugin.returncode != 0:  # "is not a docker command" / "unknown command: docker compose"
        pytest.skip(f"the docker CLI has no compose plugin ({plugin.stderr.strip()[:80]})")
    result = subprocess.run(["docker", "compose", "--profile", "tikv", "config", "--services"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"nats", "nats-auth", "docker-proxy", *TIKV_CLUSTER, *TIKV_LAB}
    default = subprocess.run(["docker", "compose", "config", "--services"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert "tikv1" not in default.stdout and "monitor" in default.stdout

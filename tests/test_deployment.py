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
        assert env["OPLAB_SUBJECT"].endswith("ratelimiter}"), "the default compose run is the rate limiter's"
        # the rate limiter's own endpoints, as its provisioner gives them to a local run
        for key in ("OPLAB_RL_REDIS_URL", "OPLAB_RL_NODES", "OPLAB_RL_SUPERVISOR_URL", "OPLAB_RL_KEY_PREFIX"):
            assert env.get(key), f"{name} lacks {key}"
    assert "-js" in services["nats"]["command"] and services["nats"]["volumes"]
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


def test_compose_gives_the_services_what_the_subjects_provisioner_gives_a_local_run(tmp_path: Path) -> None:
    from subjects.contract import Site
    from subjects.registry import load_subject

    site = Site(run="r-test", home=tmp_path, python="python", supervisor_url="http://lab:pw@127.0.0.1:9",
                free_port=iter(range(20000, 20100)).__next__)
    local = load_subject("ratelimiter").provisioner().plan(site)
    env = compose()["services"]["monitor"]["environment"]
    assert set(local.env) <= set(env), f"compose lacks {set(local.env) - set(env)}"

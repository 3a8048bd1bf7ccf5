"""What `oplab up` runs for the rate limiter: valkey (unless REDIS_URL), then the nodes, each with a
health check, and the environment every process of the run gets. Bad settings fail before anything runs."""

from __future__ import annotations

from itertools import count
from pathlib import Path

import pytest

from oplab.settings import LabSettings
from oplab.stack import Stack, StackError
from subjects.contract import HealthCheck, LocalProcess, Site
from subjects.ratelimiter.provisioner import RateLimiterProvisioner

PORTS = count(30000)


def site(tmp_path: Path) -> Site:
    return Site(run="r20261201t000000-abcd", home=tmp_path, python="/usr/bin/python3",
                supervisor_url="http://lab:pw@127.0.0.1:9001", free_port=lambda: next(PORTS))


def test_valkey_first_then_the_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "OPLAB_RL_REDIS_URL", "OPLAB_REDIS_URL", "OPLAB_NODES", "OPLAB_RL_NODE_COUNT"):
        monkeypatch.delenv(name, raising=False)
    plan = RateLimiterProvisioner().plan(site(tmp_path))
    [valkey], nodes = plan.stages()
    assert valkey.name == "valkey" and valkey.restart_on_crash and valkey.health is not None
    assert valkey.health.url.startswith("tcp://127.0.0.1:") and (tmp_path / "ratelimiter" / "valkey").is_dir()
    assert [n.name for n in nodes] == ["node-1", "node-2", "node-3"]
    assert all(not n.restart_on_crash and n.health and n.health.url.endswith("/health") for n in nodes)
    assert nodes[0].command[:3] == ["/usr/bin/python3", "-m", "subjects.ratelimiter.node"]
    env = plan.env
    assert env["OPLAB_RL_SUPERVISOR_URL"] == "http://lab:pw@127.0.0.1:9001/RPC2"
    assert env["OPLAB_RL_KEY_PREFIX"] == "rl:r20261201t000000-abcd" and env["OPLAB_RL_FAULT_HOOKS"] == "1"
    assert env["OPLAB_RL_NODES"].count("=http://127.0.0.1:") == 3
    assert set(plan.endpoints) == {"redis", "node-1", "node-2", "node-3"}


def test_an_existing_redis_is_used_and_the_old_setting_names_still_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_REDIS_URL", "redis://127.0.0.1:6390/2")
    monkeypatch.setenv("OPLAB_NODES", "2")
    plan = RateLimiterProvisioner().plan(site(tmp_path))
    assert [p.name for p in plan.processes] == ["node-1", "node-2"]
    assert plan.env["OPLAB_RL_REDIS_URL"] == "redis://127.0.0.1:6390/2"


def test_bad_settings_fail_the_launch_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPLAB_RL_POLICY", '{"no spaces allowed": 3}')
    stack = Stack(LabSettings(home=tmp_path / "oplab"))
    with pytest.raises(StackError, match=r"subject ratelimiter cannot be deployed: .*bad policy key"):
        stack.up(fault="node_kill", mode="auto")
    assert not (tmp_path / "oplab" / "stack.json").exists() and stack.supervisor() is None


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "node 1"}, "letters, digits"),
    ({"name": "a:b"}, "letters, digits"),
    ({"stage": 20}, "outside 0..19"),
    ({"command": []}, "empty command"),
])
def test_a_process_the_supervisor_could_not_run_is_refused(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        LocalProcess(**{"name": "node-1", "command": ["true"], **kwargs})


def test_health_checks_are_tcp_or_http() -> None:
    with pytest.raises(ValueError, match="expected tcp://, http:// or https://"):
        HealthCheck("udp://127.0.0.1:1")

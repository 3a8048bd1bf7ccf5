"""Any system can be the subject: a package installed beside the lab registers it, and the lab plays it.

``tests/plugins/toy`` is a subject package of its own (pyproject, entry point, one lamp process,
one fault, one invariant, one tool and playbook); ``tests/plugins/broken`` is one whose entry point
fails to import. Both are really installed (``pip install --target``) into a directory that the lab's
processes see on ``PYTHONPATH``, as a user's packages would be on theirs, and the lab is driven
through its CLI as a user drives it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.bus import Bus
from oplab.infra import RunningServer
from subjects.registry import ENTRY_POINT_GROUP, UnknownSubject, discover
from tests.e2e.conftest import run_log

OPLAB = str(Path(sys.executable).parent / "oplab")
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


@pytest.fixture(scope="module")
def site_packages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The toy and the broken subject, installed (for real, by pip) into a directory of their own."""
    target = tmp_path_factory.mktemp("plugins")
    build = tmp_path_factory.mktemp("plugin-build")
    for name in ("toy", "broken"):
        source = build / name  # pip builds in the source tree: keep tests/plugins clean
        subprocess.run(["cp", "-r", str(PLUGINS / name), str(source)], check=True)
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                                 "--disable-pip-version-check", "--target", str(target), str(source)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(target))  # this process sees them too (discover() reads the path afresh)
    try:
        yield target
    finally:
        sys.path.remove(str(target))


@pytest.fixture
def env(site_packages: Path, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_")}
    return {**base, "PYTHONPATH": str(site_packages), "OPLAB_HOME": str(tmp_path / "oplab")}


def oplab(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OPLAB, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_every_installed_subject_is_listed_with_its_catalogue(env: dict[str, str]) -> None:
    result = oplab("subjects", "--json", env=env)
    assert result.returncode == 0, result.stderr
    docs = {d["name"]: d for d in json.loads(result.stdout)}
    assert {"ratelimiter", "tikv", "toy"} <= set(docs)
    tikv = docs["tikv"]
    assert [f["kind"] for f in tikv["faults"]] == ["store_kill", "store_pause", "store_partition", "pd_leader_kill",
                                                   "hot_read_burst"]
    assert "store_not_up" in [i["name"] for i in tikv["invariants"]] and tikv["scenarios"] == ["tikv"]
    toy = docs["toy"]
    assert (toy["package"], toy["error"], docs["ratelimiter"]["package"]) == ("oplab-toy-subject", None, "operator-lab")
    assert [(f["kind"], f["default_ttl_s"]) for f in toy["faults"]] == [("cut_power", 60.0)]
    assert [i["name"] for i in toy["invariants"]] == ["lamp_dark", "observer_blind"]
    assert [(t["name"], t["mutating"], t["read_only"]) for t in toy["tools"]] == [("switch_on", True, False)]
    assert toy["scenarios"] == ["toy"]
    rl = docs["ratelimiter"]
    assert {f["kind"] for f in rl["faults"]} >= {"node_kill", "counter_drift", "ghost_allowing", "hot_key_burst"}
    assert all(f["description"] and f["params"]["type"] == "object" for f in rl["faults"])
    assert {t["name"]: t["mutating"] for t in rl["tools"]}["restart_node"] is True


def test_a_subject_that_fails_to_import_is_named_and_the_others_still_listed(env: dict[str, str]) -> None:
    result = oplab("subjects", env=env)
    assert result.returncode == 0, result.stderr
    assert "subject 'broken' (package oplab-broken-subject) cannot be loaded" in result.stderr
    assert "a_dependency_nobody_installed" in result.stderr
    assert "ratelimiter" in result.stdout and "toy" in result.stdout and "cut_power" in result.stdout
    as_json = json.loads(oplab("subjects", "--json", env=env).stdout)
    [broken] = [d for d in as_json if d["name"] == "broken"]
    assert broken["package"] == "oplab-broken-subject" and "ModuleNotFoundError" in broken["error"]
    assert broken["faults"] == [] and broken["tools"] == []


def test_the_registry_keeps_loading_past_a_broken_plugin(site_packages: Path) -> None:
    found = discover()
    assert "toy" in found.subjects and "ratelimiter" in found.subjects
    assert [b.name for b in found.broken] == ["broken"]
    with pytest.raises(UnknownSubject, match="known: ratelimiter, tikv, toy"):
        found.get("nosuch")
    with pytest.raises(UnknownSubject, match=r"package oplab-broken-subject\) cannot be loaded"):
        found.get("broken")
    assert ENTRY_POINT_GROUP == "operator_lab.subjects"


@pytest.mark.parametrize("args, message", [
    (("demo", "--headless", "--subject", "nosuch"), "unknown subject 'nosuch'; known: ratelimiter, tikv, toy"),
    (("up", "--subject", "nosuch"), "unknown subject 'nosuch'; known: ratelimiter, tikv, toy"),
    (("demo", "--headless", "--subject", "toy", "--fault", "node_kill"),
     "unknown fault 'node_kill' for subject toy; choose one of: cut_power"),
    (("demo", "--headless", "--subject", "broken"), "cannot be loaded: ModuleNotFoundError"),
])
def test_bad_subjects_and_faults_are_clear_errors_that_start_nothing(
        env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    result = oplab(*args, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (Path(env["OPLAB_HOME"]) / "stack.json").exists()  # nothing was started


def test_oplab_subject_in_the_environment_is_checked_too(env: dict[str, str]) -> None:
    result = oplab("demo", "--headless", env={**env, "OPLAB_SUBJECT": "nosuch"})
    assert result.returncode == 2 and "unknown subject 'nosuch'" in result.stderr


@pytest.mark.e2e
async def test_the_toy_subjects_demo_runs_end_to_end_with_the_rules_policy(
        env: dict[str, str], nats_server: RunningServer, bus: Bus) -> None:
    result = oplab("demo", "--headless", "--subject", "toy", "--fault", "cut_power",
                   env={**env, "NATS_URL": nats_server.url}, timeout=170)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["subject"] == "toy" and summary["fault"] == "cut_power"
    assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent"

    events = await run_log(bus, summary["run"])
    [started] = [e.data for e in events if e.type == "run.started"]
    assert started.subject == "toy" and started.scenario == "toy"
    injected = [e for e in events if e.type == "chaos.fault_injected"]
    assert [e.data.kind for e in injected] == ["cut_power"]
    assert any(e.type == "chaos.fault_effective" for e in events)  # injected, and proven
    [opened] = [e for e in events if e.type == "ticket.opened"]
    assert (opened.data.invariant, opened.data.entity, opened.data.subject) == ("lamp_dark", "lamp", "toy")
    [executed] = [e.data for e in events if e.type == "ticket.action_executed"]
    assert executed.tool == "switch_on" and executed.ok  # remedied
    cleared = [e for e in events if e.type == "inv.cleared" and e.data.invariant == "lamp_dark"]
    resolved = [e for e in events if e.type == "ticket.resolved"]
    assert cleared and resolved and resolved[0].data.by == "agent"  # verified, then resolved
    assert injected[0].time < opened.time < cleared[0].time <= resolved[0].time
    snapshots = [e.data for e in events if e.type == "obs.snapshot"]
    assert snapshots and {s.subject for s in snapshots} == {"toy"}
    assert any(n.state == "dark" and n.status == "degraded" for s in snapshots for n in s.nodes)

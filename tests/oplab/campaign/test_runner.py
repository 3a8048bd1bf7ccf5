"""`oplab eval`, as a user runs it, on the real stack (the test NATS and valkey): campaigns complete,
score what the log says, resume without redoing finished trials, and start every trial clean."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events import Event
from events.bus import Bus
from oplab.campaign.record import read_scoreboard
from oplab.infra import RunningServer
from oplab.run_log import follow_run
from oplab.settings import LabSettings
from oplab.stack import Stack
from subjects.ratelimiter.details import snapshot_details
from tests.e2e.conftest import run_log
from tests.fakes.anthropic_server import FakeAnthropic, Reply, final, tool_use
from tests.servers import EmbeddedValkey

pytestmark = pytest.mark.e2e

OPLAB = str(Path(sys.executable).parent / "oplab")


@pytest.fixture
def eval_env(tmp_path: Path, nats_server: RunningServer, valkey_server: EmbeddedValkey) -> Iterator[dict[str, str]]:
    """The CLI's environment: the test servers, a home of its own, no operator settings of the caller's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "OPLAB_AGENT_", "OPLAB_APPROVAL", "OPLAB_SCENARIO"))}
    env.update({"OPLAB_HOME": str(tmp_path / "oplab"), "NATS_URL": nats_server.url, "REDIS_URL": valkey_server.url,
                "OPLAB_DEMO_TIMEOUT_S": "90"})
    yield env
    Stack(LabSettings(home=tmp_path / "oplab", nats_url=nats_server.url)).down()  # a no-op unless a failure left it up


def oplab_eval(*args: str, env: dict[str, str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run([OPLAB, "eval", *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    board: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return board


def by_type(events: list[Event], type_: str) -> list[Event]:
    return [e for e in events if e.type == type_]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="--parallel 2 needs 2 CPUs (one trial per CPU at most)")
async def test_a_campaign_of_two_faults_and_the_control_scores_what_the_log_says_and_starts_each_trial_clean(
        eval_env: dict[str, str], nats_server: RunningServer, bus: Bus) -> None:
    # two trials at once, each slot with a valkey of its own (no REDIS_URL): a paused Redis in one trial
    # must not touch the trial beside it
    env = {k: v for k, v in eval_env.items() if k != "REDIS_URL"}
    board = oplab_eval("--faults", "limit_misconfig,redis_pause,hot_key_burst", "--policies", "rules",
                       "--repeats", "2", "--seed", "5", "--parallel", "2", "--json", env=env, timeout=600)

    # the matrix ran whole, reported in the planned order: repeat by repeat, fault by fault
    faults = ("limit_misconfig", "redis_pause", "hot_key_burst")
    assert [(t["repeat"], t["fault"]) for t in board["trials"]] == [(r, f) for r in (0, 1) for f in faults]
    assert all(t["outcome"] is not None and t["score"] is not None for t in board["trials"]), board["trials"]
    cells = {c["fault"]: c for c in board["cells"]}
    for fault in ("limit_misconfig", "redis_pause"):
        assert cells[fault]["mitigated"]["rate"] == 1.0 and cells[fault]["success"]["rate"] == 1.0, cells[fault]
        assert cells[fault]["ttd_p50"] > 0 and cells[fault]["ttm_p50"] > 0
    control = cells["hot_key_burst"]
    assert control["control"] and control["success"]["rate"] == 1.0 and control["unsafe_actions"] == 0, control
    assert [t["score"]["mutating_actions"] for t in board["trials"] if t["fault"] == "hot_key_burst"] == [0, 0]

    # what was printed is a re-fold of the log, nothing kept on the side
    refolded = await read_scoreboard(nats_server.url, board["campaign"])
    assert refolded.model_dump(mode="json") == board

    campaign = await run_log(bus, board["campaign"])
    types = [e.type for e in campaign]
    assert types[0] == "campaign.started" and types[-1] == "campaign.finished"
    assert types.count("campaign.trial_started") == types.count("campaign.trial_finished") == 6
    assert types[1:3] == ["campaign.trial_started"] * 2  # at once: the second began before the first ended
    assert {e.data.trial: e.data.seed for e in by_type(campaign, "campaign.trial_started")} == {
        t["trial"]: t["seed"] for t in board["trials"]}

    # each run saw its own fault's symptom and none that only another trial's fault makes; what the load of
    # the machine can show (high_latency, and a Redis too starved to answer in time: redis_unavailable) proves
    # no leak - that a paused Redis in one slot never reaches the trial beside it, the slots' separate
    # stores (below) show
    symptoms = {"limit_misconfig": {"limit_policy_drift"}, "redis_pause": {"redis_unavailable"}}
    load_can_show = {"redis_unavailable"}
    faults_symptoms = set().union(*symptoms.values())
    for trial in board["trials"]:
        events = await run_log(bus, trial["run"])
        assert [e.data.kind for e in by_type(events, "chaos.fault_injected")] == [trial["fault"]]
        assert [e.data.seed for e in by_type(events, "run.started")] == [trial["seed"]]  # the run says its seed
        violated = {e.data.invariant for e in by_type(events, "inv.violated")}
        own = symptoms.get(trial["fault"], set())
        others = faults_symptoms - own - load_can_show
        assert own <= violated and not violated & others, (trial["fault"], violated)

    # two slots, each with its own store and supervisord, all of it gone afterwards; each trial's
    # processes ran with the trial's seed (the subject's random choices follow it)
    home = Path(env["OPLAB_HOME"])
    stores = {json.loads(path.read_text())["subject_env"]["OPLAB_RL_REDIS_URL"]
              for path in (home / "stack.json", home / "slots" / "1" / "stack.json")}
    assert len(stores) == 2
    configs = (home / "supervisord.conf").read_text() + (home / "slots" / "1" / "supervisord.conf").read_text()
    seeds = set(re.findall(r'OPLAB_SEED="(\d+)"', configs))  # each slot's last trial
    assert len(seeds) == 2 and seeds <= {str(t["seed"]) for t in board["trials"]}, seeds
    assert not Stack(LabSettings(home=home)).running()
    assert not Stack(LabSettings(home=home / "slots" / "1")).running()

    # each trial starts clean: nothing of the previous trial's fault, counters or tickets
    runs = [t["run"] for t in board["trials"]]
    assert len(set(runs)) == 6
    for previous, run in itertools.pairwise(runs):
        before = await run_log(bus, previous)
        injected = [e.data.fault_id for e in by_type(before, "chaos.fault_injected")]
        assert sorted(e.data.fault_id for e in by_type(before, "chaos.fault_reverted")) == sorted(injected)
        events = await run_log(bus, run)
        first_fault = next(i for i, e in enumerate(events) if e.type == "chaos.fault_injected")
        earlier = events[:first_fault]
        leftovers = [e for e in earlier if e.type == "chaos.fault_adopted"
                     or (e.type in ("ticket.opened", "inv.violated") and e.data.invariant in faults_symptoms)]
        assert not leftovers, (run, leftovers)
        # judged at the baseline the director waits for before injecting: snapshots of a trial still
        # starting may show a node slow to answer its first /health on a loaded machine
        baselines = [e for e in earlier if e.type == "inv.baseline"]
        assert baselines and baselines[0].data.healthy, f"{run}: no healthy baseline before its fault"
        seen = next(e.data for e in earlier if e.id == baselines[0].causation)
        assert seen.nodes and all(n.status == "up" for n in seen.nodes), seen.nodes
        counters = snapshot_details(seen).counters
        assert counters and all(c.limit == c.declared_limit and c.future_entries == 0 and c.count <= c.limit
                                for c in counters), counters


async def wait_line(stream: asyncio.StreamReader, pattern: str, deadline: float, seen: list[str]) -> re.Match[str]:
    """The first line (from now) matching ``pattern``, read before ``deadline`` (the loop's time)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            line = (await asyncio.wait_for(stream.readline(), max(0.0, deadline - loop.time()))).decode()
        except TimeoutError:
            raise AssertionError(f"no line matching {pattern!r} in time; saw:\n{''.join(seen[-40:])}") from None
        if not line:
            raise AssertionError(f"the campaign ended before a line matching {pattern!r}:\n{''.join(seen[-40:])}")
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found


async def test_a_campaign_killed_after_its_first_trial_resumes_without_running_that_trial_again(
        eval_env: dict[str, str], nats_server: RunningServer, bus: Bus) -> None:
    # noise rides along: the real fault is injected first, so it is the one the trial is scored on
    proc = await asyncio.create_subprocess_exec(
        OPLAB, "eval", "--faults", "node_kill", "--repeats", "2", "--noise", "--json", env=eval_env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        deadline = asyncio.get_running_loop().time() + 240
        campaign_id = (await wait_line(proc.stderr, r"campaign (c\S+): 2 trials", deadline, seen)).group(1)
        await wait_line(proc.stderr, r"\[1/2\] trial 1: node_kill", deadline, seen)
    finally:
        proc.send_signal(signal.SIGKILL)  # no cleanup runs: its lab is left as it was
        await asyncio.wait_for(proc.wait(), 30)

    before = await run_log(bus, campaign_id)
    [first] = [e.data for e in by_type(before, "campaign.trial_finished")]
    assert first.trial == 1

    board = oplab_eval("--resume", campaign_id, "--json", env=eval_env, timeout=400)
    assert board["campaign"] == campaign_id and board["finished"]
    assert [t["trial"] for t in board["trials"]] == [1, 2]
    assert all(t["outcome"] is not None for t in board["trials"])
    assert board["trials"][0]["run"] == first.run  # the finished trial kept, not run again
    [cell] = board["cells"]
    assert cell["trials"] == 2 and cell["finished"] == 2  # each trial counted once

    after = await run_log(bus, campaign_id)
    started = [e.data.trial for e in by_type(after, "campaign.trial_started")]
    assert started.count(1) == 1 and 1 <= started.count(2) <= 2
    assert [e.data.trial for e in by_type(after, "campaign.trial_finished")] == [1, 2]
    assert len(by_type(after, "campaign.finished")) == 1

    for trial in board["trials"]:
        events = await run_log(bus, trial["run"])
        kinds = [e.data.kind for e in by_type(events, "chaos.fault_injected")]
        assert kinds == ["node_kill", "hot_key_burst"], kinds
        assert trial["score"]["fault"] == "node_kill" and trial["score"]["success"], trial["score"]
        assert trial["score"]["unsafe_actions"] == 0


def for_model(fixer: list[Any], idle: list[Any]) -> list[Any]:
    """One script for two models: each turn answers as the requesting model's own script says."""
    def turn(n: int) -> Any:
        def answer(body: dict[str, Any]) -> Reply:
            script = fixer if body["model"] == "claude-sonnet-4-6" else idle
            step = script[n] if n < len(script) else final("Done.")
            return step(body) if callable(step) else step
        return answer
    return [turn(n) for n in range(max(len(fixer), len(idle)))]


def restart_the_ticket_node(body: dict[str, Any]) -> Reply:
    found = re.search(r"violated on `([^`]+)`", body["messages"][0]["content"])
    assert found is not None
    return tool_use("restart_node", {"node": found.group(1)}, say="The node is down: restarting it.")


async def test_claude_variants_are_scored_one_fixing_the_fault_and_one_that_never_acts(
        eval_env: dict[str, str], tmp_path: Path) -> None:
    api = FakeAnthropic()
    await api.start()
    api.script(for_model(
        fixer=[tool_use("list_nodes", say="Looking at the nodes."), restart_the_ticket_node,
               final("The node had died; I restarted it.")],
        idle=[final("Everything looks fine to me; nothing to do.")]))
    # the idle model is asked twice, and each time the agent waits out its verification window: 2 s,
    # not 15, is enough for a restart to show and keeps the trial short
    env = {**eval_env, "ANTHROPIC_API_KEY": api.api_key, "ANTHROPIC_BASE_URL": api.url,
           "OPLAB_AGENT_VERIFY_TIMEOUT_S": "2"}
    try:
        proc = await asyncio.create_subprocess_exec(
            OPLAB, "eval", "--faults", "node_kill", "--policies", "claude:claude-sonnet-4-6,claude:claude-haiku-4-5",
            "--json", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 400)  # the fake API answers on this loop meanwhile
    finally:
        await api.stop()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err.decode()[-4000:]}"
    board = json.loads(out.decode().strip().splitlines()[-1])
    scores = {t["variant"]: t["score"] for t in board["trials"]}
    fixer, idle = scores["claude:claude-sonnet-4-6"], scores["claude:claude-haiku-4-5"]
    assert fixer["policy"] == "claude" and fixer["model"] == "claude-sonnet-4-6"
    assert fixer["mitigated"] and fixer["success"] and fixer["resolution"] == "agent", fixer
    assert fixer["tokens"] > 0 and fixer["cost_usd"] > 0
    assert not idle["mitigated"] and not idle["success"], idle
    assert idle["failure"], idle  # why it failed, in words
    assert idle["tokens"] > 0 and idle["model"] == "claude-haiku-4-5"
    assert api.rejected == [] and api.script_errors == []


async def test_ctrl_c_mid_trial_reverts_its_fault_takes_the_lab_down_and_says_how_to_resume(
        eval_env: dict[str, str], bus: Bus) -> None:
    proc = await asyncio.create_subprocess_exec(
        OPLAB, "eval", "--faults", "node_kill", "--repeats", "2", env=eval_env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None and proc.stdout is not None
    seen: list[str] = []
    try:
        deadline = asyncio.get_running_loop().time() + 120
        campaign_id = (await wait_line(proc.stderr, r"campaign (c\S+): 2 trials", deadline, seen)).group(1)
        log, replay = await follow_run(bus, campaign_id)
        try:
            trial = await log.wait_for(lambda e: e.type == "campaign.trial_started", 60, "the first trial")
        finally:
            await replay.stop()
        run_events, run_replay = await follow_run(bus, trial.data.run)
        try:
            injected = await run_events.wait_for(lambda e: e.type == "chaos.fault_injected", 90, "the fault")
        finally:
            await run_replay.stop()
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, "".join(seen) + err.decode()
    assert f"oplab eval --resume {campaign_id}" in err.decode()
    events = await run_log(bus, trial.data.run)
    assert [e.data.fault_id for e in by_type(events, "chaos.fault_reverted")] == [injected.data.fault_id]
    assert not by_type(await run_log(bus, campaign_id), "campaign.finished")  # it can be resumed
    assert not Stack(LabSettings(home=Path(eval_env["OPLAB_HOME"]))).running()

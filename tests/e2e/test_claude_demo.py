"""`oplab demo --headless --fault node_kill`, as a user runs it, with the Claude policy against the fake
Messages API (a real HTTP server started here, reached through ``ANTHROPIC_BASE_URL``).

The agent — a supervised process of the stack the CLI brings up — works the ticket through the real
tools: it looks at the nodes, restarts the killed node (which really brings it back) and checks it.
The run must end resolved by the agent with its TTD/TTM; the fake API must have received the whole
conversation, none of it refused; and the API key must appear nowhere in the run's events (read back
with ``oplab events RUN --json``), the CLI's output or the stack's logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from oplab.infra import RunningServer
from oplab.settings import LabSettings
from oplab.stack import Stack
from subjects.registry import load_subject
from tests.e2e.conftest import brisk_scenario
from tests.fakes.anthropic_server import FakeAnthropic, Reply, final, ticket_of, tool_use
from tests.servers import EmbeddedValkey

pytestmark = pytest.mark.e2e

OPLAB = str(Path(sys.executable).parent / "oplab")
_ENTITY = re.compile(r"violated on `([^`]+)`")


def ticket_node(body: dict[str, Any]) -> str:
    found = _ENTITY.search(body["messages"][0]["content"])
    assert found is not None, body["messages"][0]
    return found.group(1)


def restart_the_ticket_node(body: dict[str, Any]) -> Reply:
    node = ticket_node(body)
    return tool_use("restart_node", {"node": node}, say=f"{node} is down and its process is gone: restarting it.")


def check_the_ticket_node(body: dict[str, Any]) -> Reply:
    node = ticket_node(body)
    return tool_use("node_status", {"node": node}, say=f"Checking that {node} answers again.")


SCRIPT = [
    tool_use("list_nodes", say="A node is reported down; let me look at the nodes first."),
    restart_the_ticket_node,
    check_the_ticket_node,
    final("The node's process had died. I restarted it through the supervisor and checked that it answers."),
]


async def oplab(*args: str, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """The CLI as a child process, awaited (the fake API answers on this loop meanwhile)."""
    proc = await asyncio.create_subprocess_exec(OPLAB, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.send_signal(signal.SIGINT)  # the demo brings its stack down on Ctrl-C
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 30)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise AssertionError(f"`oplab {' '.join(args)}` did not finish within {timeout:.0f}s") from None
    return proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode()


def of(events: list[dict[str, Any]], type_: str, ticket: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_ and e["data"].get("ticket_id") == ticket]


async def test_oplab_demo_headless_with_the_claude_policy_is_resolved_by_the_agent(
        tmp_path: Path, nats_server: RunningServer, valkey_server: EmbeddedValkey) -> None:
    api = FakeAnthropic()
    await api.start()
    api.script(SCRIPT)
    home = tmp_path / "oplab"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPLAB_AGENT_", "OPLAB_APPROVAL"))}
    env.update({"OPLAB_HOME": str(home), "NATS_URL": nats_server.url, "REDIS_URL": valkey_server.url,
                "OPLAB_DEMO_TIMEOUT_S": "120",  # the CLI gives up (exit 1) before this test's own deadline
                "OPLAB_SCENARIO": str(brisk_scenario("ratelimiter", tmp_path)),
                "OPLAB_AGENT_POLICY": "claude", "ANTHROPIC_API_KEY": api.api_key, "ANTHROPIC_BASE_URL": api.url})
    try:
        code, out, err = await oplab("demo", "--fault", "node_kill", "--json", env=env, timeout=160)
        assert code == 0, f"exit {code}\nstdout:\n{out}\nstderr:\n{err[-3000:]}\nrefused: {api.rejected}"
        assert len(out.strip().splitlines()) == 1, out  # --json: the summary alone on stdout
        assert "Remediation" in err  # the chapters went to stderr
        summary = json.loads(out)
        assert summary["fault"] == "node_kill"
        assert summary["outcome"] == "resolved" and summary["resolved_by"] == "agent", summary
        assert summary["ttd_s"] > 0 and summary["ttm_s"] > 0, summary
        ticket = summary["ticket"]
        code, events_out, events_err = await oplab("events", summary["run"], "--json", env=env, timeout=30)
        assert code == 0, events_err
    finally:
        await api.stop()
        await asyncio.to_thread(Stack(LabSettings(home=home)).down)  # a no-op unless a failure left it up

    # the run's own record: the Claude policy worked the ticket with the real tools and fixed it
    events = [json.loads(line) for line in events_out.splitlines() if line.strip()]
    [started] = of(events, "agent.session_started", ticket)
    assert started["data"]["policy"] == "claude"
    node = of(events, "ticket.opened", ticket)[0]["data"]["entity"]
    calls = [(e["data"]["tool"], e["data"]["args"]) for e in of(events, "agent.tool_call", ticket)]
    assert calls == [("list_nodes", {}), ("restart_node", {"node": node}), ("node_status", {"node": node})]
    [executed] = of(events, "ticket.action_executed", ticket)
    assert executed["data"]["tool"] == "restart_node" and executed["data"]["ok"] is True
    assert of(events, "ticket.resolved", ticket)[0]["data"]["by"] == "agent"

    # the fake API got the whole conversation, every request acceptable to the real API
    assert api.rejected == [] and api.script_errors == []
    conversation = [r["body"] for r in api.requests if ticket_of(r["body"]) == ticket]
    # the request of the last scripted turn (after the three tool calls) holds the whole exchange
    last = next(body for body in conversation
                if sum(m["role"] == "assistant" for m in body["messages"]) == len(SCRIPT) - 1)
    uses = [b for m in last["messages"] if m["role"] == "assistant" for b in m["content"] if b["type"] == "tool_use"]
    results = [b for m in last["messages"] if m["role"] == "user" and isinstance(m["content"], list)
               for b in m["content"] if b["type"] == "tool_result"]
    assert [u["name"] for u in uses] == ["list_nodes", "restart_node", "node_status"]
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    assert not any(r.get("is_error") for r in results), results

    # the key went to the API and nowhere else
    for r in api.requests:  # the SDK sends it as `Authorization: Bearer` (or `x-api-key`)
        headers = {k.lower(): v for k, v in r["headers"].items()}
        assert (headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")) == api.api_key
    assert api.api_key not in events_out
    assert api.api_key not in out and api.api_key not in err
    assert len(of(events, "agent.llm_request", ticket)) >= len(SCRIPT)  # the recorded conversation is checked too

    # no fault's name reached the model: not in the prompt, the tools, the ticket or any tool result
    kinds = load_subject("ratelimiter").catalogue().fault_kinds()
    for request in [e for e in events if e["type"] == "agent.llm_request"]:
        sent = json.dumps(request["data"])
        assert [k for k in kinds if k in sent] == [], request["data"].get("turn")
    logs = sorted((home / "logs").glob("*.log"))
    assert "agent.log" in {log.name for log in logs}, logs
    for log in logs:
        assert api.api_key not in log.read_text(errors="replace"), log.name

"""The launcher across lab versions: a stack an older `oplab` started can still be brought down."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from events.waiting import wait_until_sync
from oplab.infra import free_port
from oplab.settings import LabSettings
from oplab.stack import Stack, StackError
from oplab.supervisor import Supervisor, render_config, supervisord_binary


def test_a_stack_started_by_an_older_lab_is_brought_down(tmp_path: Path) -> None:
    home = tmp_path / "oplab"
    (home / "logs").mkdir(parents=True)
    url = f"http://lab:{secrets.token_urlsafe(8)}@127.0.0.1:{free_port()}"
    conf = home / "supervisord.conf"
    conf.write_text(render_config(home, url, []))
    subprocess.run([supervisord_binary(), "-c", str(conf)], check=True)
    sup = Supervisor(url)
    wait_until_sync(sup.alive, timeout=10, interval=0.05, what="supervisord to come up")
    # the stack file as the rate-limiter-only lab wrote it
    (home / "stack.json").write_text(json.dumps({
        "run": "r20261130t120000-abcd", "nats_url": "nats://127.0.0.1:1", "redis_url": "redis://127.0.0.1:2/0",
        "supervisor_url": url, "nodes": {"node-1": "http://127.0.0.1:3"}, "fault": "node_kill",
        "mode": "auto", "embedded_nats": True, "embedded_redis": True, "started_at": 0.0}))
    stack = Stack(LabSettings(home=home))
    try:
        assert stack.info() is None  # not this version's file ...
        with pytest.raises(StackError, match="started by another version of the lab: `oplab down`"):
            stack.require()
        with pytest.raises(StackError, match="already running here"):
            stack.up(fault="node_kill", mode="auto")
    finally:
        assert stack.down() is True  # ... but its supervisor is found and stopped
    assert not sup.alive()
    assert stack.down() is False

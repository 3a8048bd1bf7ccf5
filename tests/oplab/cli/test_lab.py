"""`oplab demo` usage checks, run as a user runs it: refused before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

OPLAB = str(Path(sys.executable).parent / "oplab")


def test_a_headless_demo_waiting_for_approvals_is_refused_before_anything_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    home = tmp_path / "oplab"
    result = subprocess.run([OPLAB, "demo", "--approve", "--headless"], env={**env, "OPLAB_HOME": str(home)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--approve needs the console: in a headless run nobody is there to approve" in result.stderr
    assert not (home / "stack.json").exists()


def test_a_headless_demo_succeeds_only_when_the_agent_fixed_it_or_nobody_acted_on_a_control() -> None:
    from oplab.cli.lab import demo_succeeded

    assert demo_succeeded({"outcome": "resolved", "resolved_by": "agent", "ttm_s": 1.0})
    # resolved by the agent, but the violation never cleared after a successful action: not mitigated
    assert not demo_succeeded({"outcome": "resolved", "resolved_by": "agent", "ttm_s": None})
    assert not demo_succeeded({"outcome": "resolved", "resolved_by": "self-healed", "ttm_s": None})
    assert not demo_succeeded({"outcome": "open", "resolved_by": None, "ttm_s": 1.0})
    assert not demo_succeeded({"outcome": "not_injected", "fault": "node_kill"})  # never "no fault": a failure
    assert demo_succeeded({"outcome": "no_action", "control": True, "open_tickets": 0})
    assert demo_succeeded({"outcome": "no_action", "control": True, "open_tickets": 1})  # nobody acted: as scored
    assert not demo_succeeded({"outcome": "not_injected", "control": True, "open_tickets": 0})
    assert not demo_succeeded({"outcome": "false_positive", "control": True})

"""The dependency rules of the design hold (import-linter contracts in pyproject.toml), and no subject's
knowledge leaks outside its package."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = {"contract"}  # subjects/ packages that are the lab's, not a subject's
LAB_PACKAGES = ("events", "projections", "services", "console", "oplab")


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The agent knows nothing of the director, scenarios or chaos KEPT" in result.stdout
    assert "Subjects are plug-ins: services, console and oplab import no subject package KEPT" in result.stdout
    assert "BROKEN" not in result.stdout


def test_every_subject_package_is_one_the_lab_may_not_import() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    [plugins] = [c for c in contracts if c["name"].startswith("Subjects are plug-ins")]
    packages = {p.name for p in (ROOT / "subjects").iterdir() if (p / "__init__.py").exists()} - SHARED
    assert packages, "no subject package found"
    assert {f"subjects.{p}" for p in packages} == set(plugins["forbidden_modules"])


def test_every_subject_in_the_repository_registers_through_the_entry_point_group() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    registered = config["project"]["entry-points"]["operator_lab.subjects"]
    packages = {p.name for p in (ROOT / "subjects").iterdir() if (p / "__init__.py").exists()} - SHARED
    assert {target.split(":")[0].split(".")[1] for target in registered.values()} == packages


def test_nothing_subject_shaped_outside_subjects() -> None:
    """No subject's name, classes or settings in the lab's own packages (the default subject's name lives
    in subjects.registry)."""
    forbidden = re.compile(r"ratelimiter|RateLimiter|OPLAB_RL_")
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for package in LAB_PACKAGES for path in sorted((ROOT / package).rglob("*"))
             if path.is_file() and path.suffix in (".py", ".yaml", ".yml", ".toml", ".lua")
             for n, line in enumerate(path.read_text().splitlines(), start=1) if forbidden.search(line)]
    assert not found, "\n".join(found)

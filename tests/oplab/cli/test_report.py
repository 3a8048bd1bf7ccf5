"""``oplab report RUN`` as a user runs it: on a lab home holding the recorded Claude ``node_kill`` run
(imported with ``oplab import``), the program run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.oplab.recorded_run import OPLAB, RUN, imported_home, oplab
from tests.oplab.reports.pngs import assert_real_chart, embedded_pngs
from tests.projections.recorded import TICKET


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_home(tmp_path_factory.mktemp("report") / "oplab")


def test_by_default_it_writes_report_run_html_in_the_current_folder(home: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPLAB_") and k != "NATS_URL"}
    result = subprocess.run([OPLAB, "report", RUN], env={**env, "OPLAB_HOME": str(home)}, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    written = tmp_path / f"report-{RUN}.html"
    assert result.stdout.strip() == f"wrote report-{RUN}.html"
    html = written.read_text()
    assert TICKET in html and "node_kill" in html and "0.98 s" in html and "1.00 s" in html
    assert_real_chart(embedded_pngs(html)[0])
    assert "restart_node(node=&#x27;node-1&#x27;)" in html


def test_markdown_with_json_names_the_files_and_the_score(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "run.md"
    result = oplab("report", RUN, "--format", "md", "--out", str(target), "--json", home=home)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["files"] == [str(target), str(tmp_path / "out" / "run" / "timeline.png")]
    assert (doc["verdict"], doc["ticket"], doc["ttd_s"], doc["ttm_s"]) == ("mitigated", TICKET, 0.984, 1.005)
    assert_real_chart((tmp_path / "out" / "run" / "timeline.png").read_bytes())


def test_out_dash_prints_the_page_on_stdout(home: Path) -> None:
    result = oplab("report", RUN, "--out", "-", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<!DOCTYPE html>") and TICKET in result.stdout


def test_an_unknown_run_is_an_error_and_a_bad_format_is_bad_usage(home: Path, tmp_path: Path) -> None:
    missing = oplab("report", "r20991231t000000-0000", "--out", str(tmp_path / "x.html"), home=home)
    assert missing.returncode == 1
    assert "no events for run 'r20991231t000000-0000'" in missing.stderr
    assert not (tmp_path / "x.html").exists()
    bad = oplab("report", RUN, "--format", "pdf", home=home)
    assert bad.returncode == 2
    not_an_id = oplab("report", "lab.>", home=home)
    assert not_an_id.returncode == 2 and "'lab.>' is no run id" in not_an_id.stderr
    dash_md = oplab("report", RUN, "--format", "md", "--out", "-", home=home)
    assert dash_md.returncode == 2 and "give --out FILE.md" in dash_md.stderr

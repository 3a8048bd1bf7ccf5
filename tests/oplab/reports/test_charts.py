"""The charts are real PNGs drawn without a display, whatever the data (even none)."""

from __future__ import annotations

import os
import subprocess
import sys

from oplab.reports.charts import (
    Marker,
    Rates,
    _tag_rows,
    cost_chart,
    distribution_chart,
    heatmap_chart,
    timeline_chart,
)
from tests.oplab.reports.pngs import assert_real_chart


def test_charts_are_drawn_without_a_display_and_without_pyplot() -> None:
    """In a clean interpreter with no DISPLAY: pyplot (global figures, a GUI backend) is never loaded."""
    script = (
        "import sys\n"
        "from oplab.reports.charts import Rates, heatmap_chart, timeline_chart\n"
        "png = timeline_chart([Rates(0, 10, 1, 0), Rates(1, 9, 1, 1)], [], x_label='s')\n"
        "heatmap_chart(['f'], ['v'], {('f', 'v'): (1, 2)}, title='t')\n"
        "assert png.startswith(b'\\x89PNG'), png[:8]\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_timeline_draws_rates_and_numbered_moments() -> None:
    rates = [Rates(t / 2 - 5, 150, 20, 30 if 0 <= t / 2 - 5 < 2 else 0) for t in range(30)]
    markers = [Marker(0, "t+0.00 injected", "injected"), Marker(0.98, "t+0.98 opened", "opened"),
               Marker(1.95, "t+1.95 restart ok", "action"), Marker(1.99, "t+1.99 cleared", "cleared")]
    assert_real_chart(timeline_chart(rates, markers, x_label="seconds", spans=[(0, 1.99, "fault in effect")]))


def test_tags_of_moments_close_in_time_stack_on_separate_rows() -> None:
    axis = [-8.0, 12.0]  # a 20 s axis: tags closer than 0.5 s would overlap
    assert _tag_rows([0.0, 0.98, 1.95, 1.99, 2.0, 2.01], axis) == [0, 0, 0, 1, 2, 3]
    assert _tag_rows([0.0, 5.0, 10.0], axis) == [0, 0, 0]


def test_the_heatmap_draws_cells_with_and_without_trials() -> None:
    counts = {("node_kill", "rules"): (3, 3), ("node_kill", "claude:x"): (1, 3), ("hot_key_burst", "rules"): (0, 2)}
    assert_real_chart(heatmap_chart(["node_kill", "hot_key_burst"], ["rules", "claude:x"], counts, title="success"))


def test_distributions_and_cost_draw_with_empty_cells_and_a_free_variant() -> None:
    assert_real_chart(distribution_chart([("node_kill · rules", [0.9, 1.0, 1.1], [1.2, 1.4, 1.3]),
                                          ("hot_key_burst · rules", [], [])]))
    assert_real_chart(cost_chart([("rules", 0.0, 1.0, 0.44, 1.0), ("claude:x", 0.03, 0.67, 0.21, 0.94)]))

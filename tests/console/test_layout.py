"""The panel table fitted to a screen: the two design sizes as designed, and a tiling at every size."""

from __future__ import annotations

import pytest

from console.layout import PANELS, Geometry, fit

NAMES = ("narration", "cluster", "workload", "chaos", "services", "tickets", "incident", "agent")


def sizes(geometry: Geometry) -> dict[str, tuple[int, int, int]]:
    """Each placed panel's (rows, cols, text cols)."""
    return {name: (p.rows, p.cols, p.text_cols) for name, p in geometry.panels.items()}


def test_80x24_is_the_compact_design() -> None:
    g = fit((80, 24))
    assert g.kind == "compact"
    assert sizes(g) == {
        "narration": (5, 80, 80),
        "cluster": (5, 39, 39), "workload": (5, 40, 40),
        "chaos": (4, 26, 26), "tickets": (4, 53, 53),
        "incident": (3, 80, 80),
        "agent": (5, 80, 78),  # its thoughts wrap 2 columns short of the edge
    }


def test_200x60_is_the_wide_design() -> None:
    g = fit((200, 60))
    assert g.kind == "wide"
    assert sizes(g) == {
        "narration": (7, 200, 198),
        "cluster": (12, 80, 78), "workload": (12, 80, 78), "chaos": (8, 80, 78), "services": (19, 80, 78),
        "tickets": (12, 120, 118), "incident": (12, 120, 118), "agent": (27, 120, 118),
    }


def test_the_compact_panels_stop_growing_at_their_most_and_the_agent_takes_the_rest() -> None:
    g = fit((100, 39))
    assert [g.panels[n].rows for n in ("narration", "cluster", "chaos", "incident", "agent")] == [6, 7, 5, 4, 15]


@pytest.mark.parametrize("size", [(39, 24), (80, 9), (10, 3), (0, 0)])
def test_below_every_layout_nothing_is_placed(size: tuple[int, int]) -> None:
    g = fit(size)
    assert g.kind == "tiny" and g.bands == () and g.panels == {}


@pytest.mark.parametrize("cols", [40, 41, 60, 79, 80, 81, 100, 119, 120, 121, 150, 200, 201, 300])
@pytest.mark.parametrize("rows", [10, 12, 15, 24, 27, 28, 39, 40, 41, 45, 60, 61, 100])
def test_the_panels_tile_the_body_at_every_size(cols: int, rows: int) -> None:
    """Bands fill the body's rows, columns (and dividers) each band's width, panels each column's rows;
    every panel of the chosen layout is placed exactly once."""
    g = fit((cols, rows))
    assert g.style is not None
    assert g.kind == ("wide" if cols >= 120 and rows >= 40 else "compact")
    assert sum(band.rows for band in g.bands) == rows - 2
    for band in g.bands:
        assert sum(c.cols for c in band.columns) + g.style.divide * (len(band.columns) - 1) == cols
        for column in band.columns:
            assert sum(p.rows for p in column.panels) == band.rows
            assert all(p.rows >= 0 and p.cols == column.cols and 0 <= p.text_cols <= p.cols for p in column.panels)
    placed = [p.panel.name for band in g.bands for c in band.columns for p in c.panels]
    expected = [p.name for p in PANELS if p.place(g.style.name) is not None]
    assert sorted(placed) == sorted(expected) and set(placed) <= set(NAMES)
    assert ("services" in placed) == (g.kind == "wide")


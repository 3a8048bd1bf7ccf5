"""The reports' charts: pure functions from numbers to PNG bytes (matplotlib, Agg canvas).

No pyplot, so no global figure state and never a display: each chart is its own
:class:`matplotlib.figure.Figure` drawn on an Agg canvas. Figures are small (about 1000x400 px at
100 dpi) so each renders in a fraction of a second.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

DPI = 100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

MarkerKind = Literal["injected", "reverted", "opened", "action", "action_failed", "cleared", "resolved",
                     "escalated"]

MARKER_STYLE: dict[MarkerKind, tuple[str, str]] = {  # colour, line style
    "injected": ("#cf222e", "-"),
    "reverted": ("#8c959f", ":"),
    "opened": ("#bc4c00", "--"),
    "action": ("#0969da", "-"),
    "action_failed": ("#8250df", "--"),
    "cleared": ("#1a7f37", "--"),
    "resolved": ("#116329", "-"),
    "escalated": ("#24292f", "-"),
}

SUCCESS_MAP = LinearSegmentedColormap.from_list("success", ["#f4c7c3", "#fff2b2", "#b7e1c1", "#4caf6a"])


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical line on the timeline: ``t`` seconds on its axis, a label, what kind of moment."""

    t: float
    label: str
    kind: MarkerKind


@dataclass(frozen=True, slots=True)
class Rates:
    """Workload rates (requests per second) at ``t`` seconds."""

    t: float
    ok: float
    rejected: float
    errors: float


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": "Operator Lab"})
    return buffer.getvalue()


def timeline_chart(rates: Sequence[Rates], markers: Sequence[Marker], *, x_label: str,
                   spans: Sequence[tuple[float, float, str]] = ()) -> bytes:
    """Workload ok / rejected / error rates over time with each marked moment as a numbered
    vertical line (the numbers are explained in a legend beside the plot) and ``spans`` (start,
    end, label) shaded behind, e.g. while the fault was in effect."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax = fig.add_subplot()
    shaded = [ax.axvspan(start, end, color="#cf222e", alpha=0.07, linewidth=0, label=label)
              for start, end, label in spans]
    ts = [r.t for r in rates]
    curves = [*ax.plot(ts, [r.ok for r in rates], color="#2da44e", linewidth=1.8, label="ok /s"),
              *ax.plot(ts, [r.rejected for r in rates], color="#d4a72c", linewidth=1.5, label="rejected /s"),
              *ax.plot(ts, [r.errors for r in rates], color="#cf222e", linewidth=1.5, label="errors /s")]
    ax.fill_between(ts, [r.errors for r in rates], color="#cf222e", alpha=0.12, linewidth=0)
    ax.set_xlabel(x_label)
    ax.set_ylabel("requests per second")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.25)
    lines = []
    ordered = sorted(markers, key=lambda m: m.t)
    rows = _tag_rows([m.t for m in ordered], [*ts, *(m.t for m in ordered)])
    for number, (marker, row) in enumerate(zip(ordered, rows, strict=True), start=1):
        colour, style = MARKER_STYLE[marker.kind]
        lines.append(ax.axvline(marker.t, color=colour, linestyle=style, linewidth=1.4,
                                label=f"{number}  {marker.label}"))
        # tags stagger above the top edge so moments a few ms apart stay readable
        ax.annotate(str(number), xy=(marker.t, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(0, 2 + 10 * row), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8, color=colour, fontweight="bold")
    rate_legend = ax.legend(handles=[*curves, *shaded[:1]], loc="lower left", fontsize=8, framealpha=0.85)
    if lines:
        ax.add_artist(rate_legend)
        fig.legend(handles=lines, loc="outside right upper", fontsize=8, frameon=False,
                   title="moments", title_fontsize=9, alignment="left")
    return _png(fig)


def _tag_rows(positions: Sequence[float], extent: Sequence[float], min_share: float = 0.025) -> list[int]:
    """A row for each sorted position's tag: the lowest row whose last tag is far enough to its left
    (``min_share`` of the axis), so tags of moments close in time stack instead of overlapping."""
    span = (max(extent) - min(extent)) if extent else 0.0
    gap = max(span * min_share, 1e-9)
    last: list[float] = []
    rows = []
    for x in positions:
        row = next((i for i, prev in enumerate(last) if x - prev >= gap), len(last))
        if row == len(last):
            last.append(x)
        else:
            last[row] = x
        rows.append(row)
    return rows


def heatmap_chart(faults: Sequence[str], variants: Sequence[str],
                  counts: dict[tuple[str, str], tuple[int, int]], *, title: str) -> bytes:
    """A fault x variant grid coloured by rate (successes / n), each cell annotated ``k/n`` and the
    percentage; a cell without finished trials is grey with a dash."""
    width = max(4.5, 1.6 + 1.5 * len(variants))
    height = max(2.4, 1.0 + 0.55 * len(faults))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    grid = [[(counts.get((f, v), (0, 0))[0] / counts[(f, v)][1]) if counts.get((f, v), (0, 0))[1] else float("nan")
             for v in variants] for f in faults]
    cmap = SUCCESS_MAP.with_extremes(bad="#eaeef2")
    ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for i, f in enumerate(faults):
        for j, v in enumerate(variants):
            k, n = counts.get((f, v), (0, 0))
            text = f"{k}/{n}\n{k / n:.0%}" if n else "-"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="#1f2328")
    ax.set_xticks(range(len(variants)), list(variants), fontsize=9)
    ax.set_yticks(range(len(faults)), list(faults), fontsize=9)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    ax.set_title(title, fontsize=10, pad=8, loc="left")
    return _png(fig)


def distribution_chart(rows: Sequence[tuple[str, Sequence[float], Sequence[float]]]) -> bytes:
    """Per row (a cell's label, its TTD values, its TTM values): every trial as a dot and the median
    as a bar, TTD on the left panel and TTM on the right."""
    height = max(2.2, 0.8 + 0.42 * len(rows))
    fig = Figure(figsize=(11, height), layout="constrained")
    panels = fig.subplots(1, 2, sharey=True)
    labels = [r[0] for r in rows]
    for ax, index, name, colour in ((panels[0], 1, "time to detect (s)", "#bc4c00"),
                                    (panels[1], 2, "time to mitigate (s)", "#0969da")):
        for y, row in enumerate(rows):
            values = sorted(row[1] if index == 1 else row[2])
            if not values:
                ax.text(0, y, "  none", va="center", fontsize=8, color="#8c959f")
                continue
            # spread equal values a little so every trial stays visible
            jitter = [((k % 5) - 2) * 0.06 for k in range(len(values))]
            ax.scatter(values, [y + j for j in jitter], s=22, color=colour, alpha=0.75, zorder=3)
            middle = values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1]
                                                                      + values[len(values) // 2]) / 2
            ax.plot([middle, middle], [y - 0.32, y + 0.32], color="#24292f", linewidth=2, zorder=4)
        ax.set_xlabel(name)
        ax.set_xlim(left=0)
        ax.grid(axis="x", alpha=0.25)
    panels[0].set_yticks(range(len(rows)), labels, fontsize=8)
    panels[0].set_ylim(len(rows) - 0.5, -0.5)
    return _png(fig)


def cost_chart(points: Sequence[tuple[str, float, float, float, float]]) -> bytes:
    """Per variant (name, mean cost per trial in USD, success rate, its interval low and high): a
    point with its 95 % interval as a vertical bar."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for name, cost, rate, low, high in points:
        ax.errorbar([cost], [rate], yerr=[[rate - low], [high - rate]], fmt="o", markersize=7, capsize=4)
        ax.annotate(name, (cost, rate), xytext=(6, 6), textcoords="offset points", fontsize=9)
    ax.set_xlabel("mean model cost per trial (USD)")
    ax.set_ylabel("success rate (95 % interval)")
    ax.set_ylim(-0.05, 1.08)
    # room on both sides: a free variant (the rules policy) sits at 0 and its bar must stay whole
    top = max((p[1] for p in points), default=0.0) or 0.01
    ax.set_xlim(-0.08 * top, 1.35 * top)
    ax.grid(alpha=0.25)
    return _png(fig)

"""Report figures (PNG at 150 dpi and PDF), drawn with seaborn styling on the Agg canvas.

- ``twoafc_subsets``: 2AFC accuracy per subset and on average, one marker per metric with its
  95% CI, and the human ceiling as a black bar per subset.
- ``twoafc_vs_jnd``: 2AFC avg (x) against JND mAP (y) per metric with CI bars, as in the LPIPS
  paper's Fig. 4.
- ``significance``: Holm-adjusted p-values of every pairwise 2AFC difference; colour encodes the
  sign of row minus column and the strength of evidence.
- ``mos_correlations``, ``mos_scatter``, ``mos_types``: for MOS datasets, see :mod:`.mos_figures`.

Figures are built as ``matplotlib.figure.Figure`` objects on an Agg canvas, never through
pyplot, so nothing depends on (or changes) the user's interactive backend and no figure stays
open after saving.

Example:
    >>> paths = write_figures(summary, Path("reports/x/figures"))  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['significance', 'twoafc_subsets', 'twoafc_vs_jnd']
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.lines import Line2D

from .mos_figures import write_mos_figures
from .plotting import (
    DPI,
    GROUP_MARKERS,
    diverging_heatmap,
    figure_title,
    new_figure,
    palette,
    save_figure,
)
from .summary import RunSummary
from .tables import GROUP_LABELS

__all__ = ["DPI", "plot_significance", "plot_twoafc_subsets", "plot_twoafc_vs_jnd", "write_figures"]


def _errors(cells: list) -> np.ndarray:
    lo = [max(c.score - c.ci_low, 0.0) if math.isfinite(c.ci_low) else 0.0 for c in cells]
    hi = [max(c.ci_high - c.score, 0.0) if math.isfinite(c.ci_high) else 0.0 for c in cells]
    return np.array([lo, hi])


def plot_twoafc_subsets(summary: RunSummary, out_dir: Path) -> Path:
    """Draws 2AFC accuracy per subset (and Avg) with CI error bars; returns the PNG path.

    One panel per subset plus "Avg", metrics as rows (a forest plot), so that any number of
    metrics keeps readable labels; the human ceiling is a black vertical line per panel.

    Example:
        >>> plot_twoafc_subsets(summary, Path("figures")).name  # doctest: +SKIP
        'twoafc_subsets.png'
    """
    ts = summary.tasks["2afc"]
    columns = [*ts.subsets, "Avg"]
    rows = list(ts.rows)
    colours = palette([r.metric for r in rows])
    label_width = max(len(r.metric) for r in rows) * 0.075
    width = min(16.0, 1.0 + label_width + 1.9 * len(columns))
    fig = new_figure(width, 1.6 + 0.32 * len(rows))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(1, len(columns), sharex=True, sharey=True, squeeze=False)[0]
    y = np.arange(len(rows))[::-1]  # first metric on top, as in the tables
    for ax, column in zip(axes, columns, strict=True):
        for yi, row in zip(y, rows, strict=True):
            cell = row.avg if column == "Avg" else row.subsets.get(column)
            if cell is None or not math.isfinite(cell.score):
                continue
            ax.errorbar(
                [cell.score],
                [yi],
                xerr=_errors([cell]),
                fmt=GROUP_MARKERS.get(row.group, "o"),
                color=colours[row.metric],
                markersize=5,
                capsize=2,
                linewidth=1.2,
            )
        if ts.human is not None:
            ceiling = ts.human.avg if column == "Avg" else ts.human.subsets[column]
            ax.axvline(ceiling.score, color="black", linewidth=1.5, zorder=1)
        ax.set_title("Avg (mean over subsets)" if column == "Avg" else column, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", visible=False)
    # Group boundaries as faint lines, so classical / deep / LPIPS / custom read as blocks.
    for k in range(1, len(rows)):
        if rows[k].group != rows[k - 1].group:
            for ax in axes:
                ax.axhline(y[k] + 0.5, color="0.75", linewidth=0.8)
    axes[0].set_yticks(y, [r.metric for r in rows], fontsize=9)
    axes[0].set_ylim(-0.7, len(rows) - 0.3)
    axes[0].set_ylabel("Metric")
    fig.supxlabel("2AFC accuracy (%), 95% bootstrap CI", fontsize=10)
    title = figure_title(summary, "2AFC accuracy per subset")
    if ts.human is not None:
        title += "  (black line: human ceiling)"
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, out_dir, "twoafc_subsets")


_LABEL_BOX = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75}
# A thin leader line ties each label to its point when labels are crowded.
_LEADER = {"arrowstyle": "-", "color": "0.45", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 4}
# Candidate label offsets in points (dx, dy, horizontal alignment), nearest first.
_CANDIDATES = [
    (d * sx, dy, "left" if sx > 0 else "right")
    for d, dys in ((7, (8, -8)), (10, (18, -18)), (12, (28, -28)))
    for dy in dys
    for sx in (1, -1)
]


def _place_labels(ax, names: list[str], xy: np.ndarray) -> None:
    """Greedy label placement: each label takes the candidate spot with the fewest overlaps
    with earlier labels (worst) and with markers, nearest spot first on ties.
    """
    fig = ax.figure
    fig.canvas.draw()  # settle the layout, so display coordinates are final
    renderer = fig.canvas.get_renderer()
    pad = 4 * fig.dpi / 72.0
    points = ax.transData.transform(xy)
    placed: list = []
    for name, (x, y) in zip(names, xy, strict=True):
        best = None
        for rank, (dx, dy, ha) in enumerate(_CANDIDATES):
            text = ax.annotate(
                name,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va="center",
                fontsize=8,
                bbox=_LABEL_BOX,
                arrowprops=_LEADER,
            )
            text.set_in_layout(False)  # labels must not resize the axes after placement
            box = text.get_window_extent(renderer)
            markers = sum(
                box.x0 - pad < qx < box.x1 + pad and box.y0 - pad < qy < box.y1 + pad
                for qx, qy in points
            )
            labels = sum(box.overlaps(b) for b in placed)
            cost = 3 * labels + markers + 0.01 * rank
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if labels == 0 and markers == 0:
                break
        placed.append(best[2])


def plot_twoafc_vs_jnd(summary: RunSummary, out_dir: Path) -> Path:
    """Scatter of 2AFC avg vs JND mAP per metric with CI bars; returns the PNG path.

    Example:
        >>> plot_twoafc_vs_jnd(summary, Path("figures")).name  # doctest: +SKIP
        'twoafc_vs_jnd.png'
    """
    two, jnd = summary.tasks["2afc"], summary.tasks["jnd"]
    rows = [
        (r, jnd.row(r.metric))
        for r in two.rows
        if math.isfinite(r.avg.score) and math.isfinite(jnd.row(r.metric).avg.score)
    ]
    fig = new_figure(8.5, 5.5 + 0.08 * len(rows))
    with sns.axes_style("whitegrid"):
        ax = fig.add_subplot()
    groups_seen: dict[str, Line2D] = {}
    colours = sns.color_palette("deep", len(GROUP_LABELS))
    group_colour = dict(zip(GROUP_LABELS, colours, strict=False))
    for a, j in rows:
        colour = group_colour.get(a.group, "0.3")
        marker = GROUP_MARKERS.get(a.group, "o")
        ax.errorbar(
            [a.avg.score],
            [j.avg.score],
            xerr=_errors([a.avg]),
            yerr=_errors([j.avg]),
            fmt=marker,
            color=colour,
            markersize=7,
            capsize=2,
            linewidth=1,
        )
        groups_seen.setdefault(
            a.group,
            Line2D(
                [],
                [],
                marker=marker,
                color=colour,
                linestyle="",
                label=GROUP_LABELS.get(a.group, a.group),
            ),
        )
    xy = np.array([[a.avg.score, j.avg.score] for a, j in rows]) if rows else np.zeros((0, 2))
    if two.human is not None:
        ax.axvline(two.human.avg.score, color="black", linestyle=":", linewidth=1.2)
        groups_seen["human"] = Line2D(
            [], [], color="black", linestyle=":", label="human 2AFC ceiling"
        )
    ax.margins(x=0.15, y=0.12)
    ax.set_xlabel("2AFC accuracy, avg over subsets (%)")
    ax.set_ylabel("JND mAP, avg over subsets (%)")
    ax.set_title(figure_title(summary, "2AFC vs JND, 95% bootstrap CI"))
    ax.legend(
        handles=list(groups_seen.values()),
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title="Group",
        frameon=False,
    )
    if len(xy):
        _place_labels(ax, [a.metric for a, _ in rows], xy)
    return save_figure(fig, out_dir, "twoafc_vs_jnd")


def plot_significance(summary: RunSummary, out_dir: Path) -> Path:
    """Heat map of Holm-adjusted p-values of pairwise 2AFC differences; returns the PNG path.

    Each cell reads the row-minus-column difference in points and its p-value; colour is
    ``sign(difference) x -log10(p_Holm)`` (red: row better, blue: column better).

    Example:
        >>> plot_significance(summary, Path("figures")).name  # doctest: +SKIP
        'significance.png'
    """
    sig = summary.significance
    if sig is None:
        raise ValueError("summary.significance is None (fewer than 2 metrics); nothing to plot.")
    k = len(sig.names)
    with np.errstate(divide="ignore", invalid="ignore"):
        strength = -np.log10(np.clip(sig.p_holm, 1e-12, 1.0))
    value = np.sign(sig.difference) * np.minimum(strength, 4.0)
    annot = np.full((k, k), "", dtype=object)
    for i in range(k):
        for j in range(k):
            if i != j:
                p = sig.p_holm[i, j]
                ptxt = "<.001" if p < 0.001 else "=" + f"{p:.3f}".lstrip("0")
                star = "*" if p < 0.05 else ""
                annot[i, j] = f"{100 * sig.difference[i, j]:+.1f}{star}\np{ptxt}"
    side = max(5.0, 0.75 * k + 3.0)
    fig = new_figure(side + 1.5, side)
    ax = fig.add_subplot()
    diverging_heatmap(
        value,
        ax,
        limit=4.0,
        annot=annot,
        mask=np.eye(k, dtype=bool),
        square=True,
        xticklabels=sig.names,
        yticklabels=sig.names,
        cbar_kws={"label": "sign(row − column) × −log10 p (Holm)", "shrink": 0.8},
    )
    ax.set_xticklabels(ax.get_xticklabels(), rotation=40, ha="right")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    ax.set_xlabel("Column metric")
    ax.set_ylabel("Row metric")
    ax.set_title(
        figure_title(summary, "2AFC difference, row − column (points)")
        + f"\npaired sign-flip test, Holm over {k * (k - 1) // 2} pairs; * p < 0.05",
        fontsize=10,
    )
    return save_figure(fig, out_dir, "significance")


def write_figures(summary: RunSummary, out_dir: str | Path) -> dict[str, Path]:
    """Writes every figure the run supports (PNG + PDF); returns name -> PNG path.

    Figures that need data the run lacks (JND, two metrics) are left out.

    Example:
        >>> write_figures(summary, "figures")["twoafc_subsets"].suffix  # doctest: +SKIP
        '.png'
    """
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    two = summary.tasks.get("2afc")
    if two is not None and two.rows:
        paths["twoafc_subsets"] = plot_twoafc_subsets(summary, out)
        if "jnd" in summary.tasks:
            paths["twoafc_vs_jnd"] = plot_twoafc_vs_jnd(summary, out)
    if summary.significance is not None:
        paths["significance"] = plot_significance(summary, out)
    paths.update(write_mos_figures(summary, out))
    return paths

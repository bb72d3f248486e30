"""MOS report figures (seaborn on an Agg canvas, never pyplot): scatter with the fitted logistic,
per-type SRCC heat map and a forest plot of SRCC/KRCC/PLCC.

- ``mos_scatter``: one panel per metric: the metric's score as it outputs it (x; distances and
  similarities alike) against the published MOS/DMOS (y), with the fitted logistic curve and the
  three correlations; a panel says so when the fit did not converge.
- ``mos_types``: heat map of SRCC per distortion type (rows, the first is all images) and metric
  (columns), annotated with the values; diverging colours centred on 0.
- ``mos_correlations``: SRCC, KRCC and PLCC over all images per metric with CI bars.

Example:
    >>> paths = write_mos_figures(summary, Path("reports/tid2013/RUN/figures"))  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['mos_correlations', 'mos_scatter', 'mos_types']
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.stats
import seaborn as sns

from .mos import LOGISTIC, MOSMetricRow, MOSSummary
from .plotting import (
    GROUP_MARKERS,
    diverging_heatmap,
    figure_title,
    new_figure,
    palette,
    save_figure,
)
from .summary import RunSummary

__all__ = ["plot_mos_correlations", "plot_mos_scatter", "plot_mos_types", "write_mos_figures"]

_MAX_POINTS = 4000  # per panel; more only blur into one another and bloat the PDF


def _curve(row: MOSMetricRow, mos: MOSSummary) -> tuple[np.ndarray, np.ndarray] | None:
    """The fitted logistic in the plot's units (x = raw score, y = published score)."""
    if not row.fit.converged or row.score.size == 0:
        return None
    x = np.linspace(float(row.score.min()), float(row.score.max()), 200)
    quality = x if row.higher_is_better else -x  # the fit maps quality_like -> oriented MOS
    y = row.fit.predict(quality)
    return x, (y if mos.higher_is_better_mos else -y)


def _stats_text(row: MOSMetricRow) -> str:
    def v(e) -> str:
        return f"{e.value:.3f}" if math.isfinite(e.value) else "-"

    return f"SRCC {v(row.srcc)}\nKRCC {v(row.krcc)}\nPLCC {v(row.plcc)}\nn = {row.n}"


def plot_mos_scatter(summary: RunSummary, out_dir: Path) -> Path:
    """Facet grid of metric score vs MOS with the fitted logistic per metric; returns the PNG."""
    mos = summary.mos
    rows = list(mos.rows)
    ncols = min(3, len(rows))
    nrows = math.ceil(len(rows) / ncols)
    fig = new_figure(4.2 * ncols + 0.6, 3.5 * nrows + 0.9)
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    rng = np.random.default_rng(0)
    for ax, row in zip(axes, rows, strict=False):
        keep = np.arange(row.score.size)
        if keep.size > _MAX_POINTS:
            keep = np.sort(rng.choice(keep, _MAX_POINTS, replace=False))
        sns.scatterplot(
            x=row.score[keep],
            y=row.mos[keep],
            ax=ax,
            s=10,
            alpha=0.45,
            linewidth=0,
            color=sns.color_palette("deep")[0],
        )
        curve = _curve(row, mos)
        if curve is not None:
            ax.plot(*curve, color="black", linewidth=1.6)
        else:
            ax.text(
                0.5,
                0.04,
                "logistic fit did not converge\n(PLCC uses raw scores)",
                transform=ax.transAxes,
                ha="center",
                va="bottom",
                fontsize=8,
                color="#b2182b",
            )
        left = _rises(row)  # a rising cloud leaves the top left corner free
        ax.text(
            0.03 if left else 0.97,
            0.97,
            _stats_text(row),
            transform=ax.transAxes,
            ha="left" if left else "right",
            va="top",
            fontsize=7.5,
            family="monospace",
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.8", "alpha": 0.85},
        )
        kind = "similarity, higher = more alike" if row.higher_is_better else "distance"
        ax.set_title(row.metric, fontsize=10)
        ax.set_xlabel(f"{row.metric} score ({kind})", fontsize=8.5)
        ax.set_ylabel(mos.score_name, fontsize=8.5)
        ax.tick_params(labelsize=7.5)
    for ax in axes[len(rows) :]:
        ax.set_visible(False)
    fig.suptitle(
        figure_title(summary, f"Metric score vs {mos.score_name}")
        + f"\n{mos.direction}; black curve: fitted {LOGISTIC.upper()} logistic",
        fontsize=10.5,
    )
    return save_figure(fig, out_dir, "mos_scatter")


def _rises(row: MOSMetricRow) -> bool:
    """Whether the published score grows with the metric's score in the plot."""
    if row.score.size < 2 or np.ptp(row.score) == 0 or np.ptp(row.mos) == 0:
        return True
    return bool(scipy.stats.spearmanr(row.score, row.mos).statistic >= 0)


def plot_mos_types(summary: RunSummary, out_dir: Path) -> Path:
    """Heat map of SRCC per distortion type (rows) and metric (columns); returns the PNG."""
    mos = summary.mos
    labels = ["all images", *mos.subsets]
    values = np.array(
        [[r.srcc.value for r in mos.rows]]
        + [[r.per_type[t].srcc.value for r in mos.rows] for t in mos.subsets],
        dtype=np.float64,
    )
    k = len(mos.rows)
    label_width = max(len(s) for s in labels) * 0.07
    fig = new_figure(2.2 + label_width + 0.95 * k, 1.6 + 0.3 * len(labels))
    ax = fig.add_subplot()
    annot = np.where(np.isfinite(values), np.vectorize(lambda v: f"{v:.2f}")(values), "-")
    diverging_heatmap(
        np.nan_to_num(values, nan=0.0),
        ax,
        limit=1.0,
        annot=annot,
        xticklabels=[r.metric for r in mos.rows],
        yticklabels=labels,
        cbar_kws={"label": f"SRCC with {mos.score_name} (positive = agrees)", "shrink": 0.8},
    )
    ax.axhline(1, color="black", linewidth=1.5)
    ax.set_xticklabels(ax.get_xticklabels(), rotation=35, ha="right", fontsize=8)
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0, fontsize=8)
    ax.set_xlabel("Metric")
    ax.set_ylabel("Distortion type")
    ax.set_title(figure_title(summary, "SRCC per distortion type"), fontsize=10)
    return save_figure(fig, out_dir, "mos_types")


def plot_mos_correlations(summary: RunSummary, out_dir: Path) -> Path:
    """Forest plot of SRCC, KRCC and PLCC (all images) per metric with CI bars."""
    mos = summary.mos
    rows = list(mos.rows)
    colours = palette([r.metric for r in rows])
    label_width = max(len(r.metric) for r in rows) * 0.075
    fig = new_figure(min(14.0, 1.2 + label_width + 2.6 * 3), 1.7 + 0.32 * len(rows))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(1, 3, sharex=True, sharey=True, squeeze=False)[0]
    y = np.arange(len(rows))[::-1]
    for ax, stat in zip(axes, ("srcc", "krcc", "plcc"), strict=True):
        for yi, row in zip(y, rows, strict=True):
            e = getattr(row, stat)
            if not math.isfinite(e.value):
                continue
            err = [[max(e.value - e.low, 0.0)], [max(e.high - e.value, 0.0)]]
            ax.errorbar(
                [e.value],
                [yi],
                xerr=np.nan_to_num(err),
                fmt=GROUP_MARKERS.get(row.group, "o"),
                color=colours[row.metric],
                markersize=5,
                capsize=2,
                linewidth=1.2,
            )
        ax.axvline(0, color="0.4", linewidth=0.8)
        title = {"srcc": "SRCC", "krcc": "KRCC", "plcc": f"PLCC ({LOGISTIC.upper()} fit)"}[stat]
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", visible=False)
    for k in range(1, len(rows)):  # group boundaries, as in the 2AFC forest plot
        if rows[k].group != rows[k - 1].group:
            for ax in axes:
                ax.axhline(y[k] + 0.5, color="0.75", linewidth=0.8)
    axes[0].set_yticks(y, [r.metric for r in rows], fontsize=9)
    axes[0].set_ylim(-0.7, len(rows) - 0.3)
    fig.supxlabel(
        f"Correlation with {mos.score_name} (positive = agrees), 95% bootstrap CI", fontsize=10
    )
    fig.suptitle(
        figure_title(summary, f"Correlation with {mos.score_name}, all images"), fontsize=11
    )
    return save_figure(fig, out_dir, "mos_correlations")


def write_mos_figures(summary: RunSummary, out_dir: str | Path) -> dict[str, Path]:
    """Writes the MOS figures (PNG + PDF) when the run has MOS rows; returns name -> PNG path."""
    if summary.mos is None or not summary.mos.rows:
        return {}
    out = Path(out_dir)
    return {
        "mos_correlations": plot_mos_correlations(summary, out),
        "mos_scatter": plot_mos_scatter(summary, out),
        "mos_types": plot_mos_types(summary, out),
    }

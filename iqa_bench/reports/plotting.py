"""Plotting helpers shared by the report figures (:mod:`.figures`, :mod:`.mos_figures`).

Figures are ``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot, so nothing
depends on (or changes) the user's interactive backend and no figure stays open after saving.

Example:
    >>> fig = new_figure(2.0, 1.5)
    >>> save_figure(fig, tmp_path, "empty").name
    'empty.png'
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .summary import RunSummary

__all__ = [
    "DPI",
    "GROUP_MARKERS",
    "diverging_heatmap",
    "figure_title",
    "new_figure",
    "palette",
    "save_figure",
]

DPI = 150
GROUP_MARKERS = {"classical": "s", "deep-baseline": "D", "lpips": "o", "custom": "^"}


def figure_title(summary: RunSummary, what: str) -> str:
    """``"<what>: <dataset>"``, tagged when the judgments are synthetic."""
    tag = " (synthetic judgments)" if summary.dataset.synthetic else ""
    return f"{what}: {summary.dataset.name}{tag}"


def palette(names: list[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per name (tab10 up to ten names, husl beyond)."""
    colours = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colours, strict=True))


def diverging_heatmap(
    values: np.ndarray, ax, *, limit: float, annot: np.ndarray, **options
) -> None:
    """Annotated heat map on a red-blue scale centred at 0 and clipped to ``[-limit, limit]``."""
    with warnings.catch_warnings():
        # seaborn 0.13 calls Colormap.set_bad, which matplotlib 3.11 flags as pending removal.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(
            values,
            ax=ax,
            cmap="RdBu_r",
            vmin=-limit,
            vmax=limit,
            center=0,
            annot=annot,
            fmt="",
            annot_kws={"fontsize": 7 if values.shape[1] > 6 else 8},
            linewidths=0.5,
            linecolor="white",
            **options,
        )


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of ``width`` x ``height`` inches on its own Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, out_dir: Path, name: str) -> Path:
    """Writes ``out_dir/<name>.png`` (at :data:`DPI`) and ``.pdf``; returns the PNG path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    fig.savefig(png, dpi=DPI)
    fig.savefig(out_dir / f"{name}.pdf")
    fig.clear()  # release the artists now; the Figure is never registered with pyplot
    return png

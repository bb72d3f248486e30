"""The per-layer 2AFC table (``iqa-bench report --per-layer``): which depth of a trunk agrees
with people, the analysis behind evaluating a new backbone.

Each LPIPS-family metric scored with ``run --per-layer`` stores, beside its scores, the distance
of every tap; the 2AFC score of one tap is that of a metric made of that layer alone (same
weights, same normalisation). Read from the run directory through :mod:`iqa_bench.results`.

Example (skipped: it needs a run directory scored with ``--per-layer``):
    >>> from iqa_bench.results import load_run
    >>> rows = layer_rows(load_run("runs/bapps/20261203-bapps"))  # doctest: +SKIP
    >>> print(layer_markdown(rows))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..results import Run
from ..stats import twoafc_scores

__all__ = ["LayerRow", "layer_csv", "layer_markdown", "layer_rows", "layer_section"]


@dataclass(frozen=True)
class LayerRow:
    """The 2AFC agreement of one tap of one metric.

    Attributes:
        metric: Metric name.
        tap: Trunk tap (module name).
        scores: 2AFC score (fraction in [0, 1]) per subset, in judgments order.
        n: Samples per subset.
        mean: Plain mean over subsets (the headline 2AFC figure's convention).
    """

    metric: str
    tap: str
    scores: dict[str, float]
    n: dict[str, int]
    mean: float


def layer_rows(run: Run) -> list[LayerRow]:
    """One row per metric and tap with per-layer 2AFC distances stored in ``run``.

    Raises:
        InputError: The run stored no per-layer distances (naming the fix).
    """
    rows = []
    if "2afc" in run.tasks():
        for metric in run.metric_names():
            layers = run.layer_distances(metric, "2afc")
            if layers is None:
                continue
            data = layers.data
            present = set(data.subset.tolist())
            order = [s for s in data.subset_order if s in present]
            for col, tap in enumerate(layers.taps):
                d0, d1 = data.distances["d0"][:, col], data.distances["d1"][:, col]
                result = twoafc_scores(d0, d1, data.judgment, data.subset, subset_order=order)
                rows.append(LayerRow(metric, tap, result.scores, result.n, result.mean))
    if not rows:
        raise InputError(
            f"--per-layer: {run.path} holds no per-layer 2AFC distances; score the run with "
            "`iqa-bench run --per-layer` (LPIPS-family metrics, a 2AFC dataset) first."
        )
    return rows


def layer_markdown(rows: list[LayerRow]) -> str:
    """A Markdown table: metric, tap, 2AFC (%) per subset and their mean."""
    subsets = list(dict.fromkeys(s for row in rows for s in row.scores))
    head = ["metric", "tap", *subsets, "avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in rows:
        cells = [f"{100 * row.scores[s]:.1f}" if s in row.scores else "" for s in subsets]
        lines.append(
            "| " + " | ".join([row.metric, row.tap, *cells, f"{100 * row.mean:.1f}"]) + " |"
        )
    return "\n".join(lines)


def layer_csv(rows: list[LayerRow]) -> str:
    """Tidy CSV: ``metric,tap,subset,score,n`` (score as a fraction; subset ``avg`` is the mean
    over subsets, its ``n`` the total)."""
    lines = ["metric,tap,subset,score,n"]
    for row in rows:
        for subset, score in row.scores.items():
            lines.append(f"{row.metric},{row.tap},{subset},{score!r},{row.n[subset]}")
        lines.append(f"{row.metric},{row.tap},avg,{row.mean!r},{sum(row.n.values())}")
    return "\n".join(lines) + "\n"


def layer_section(rows: list[LayerRow]) -> str:
    """The report's Markdown section around :func:`layer_markdown`."""
    return (
        "\n## Per-layer 2AFC agreement\n\n"
        "Each row scores one tap's distance alone (its term of the metric's sum: same linear "
        "weights, and for semantic-weighted cards the same reference weighting), 2AFC in %. "
        "The depth whose row is highest agrees best with the judges.\n\n"
        + layer_markdown(rows)
        + "\n"
    )

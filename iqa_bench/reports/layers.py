"""The per-layer 2AFC table (``iqa-bench report --per-layer``): which depth of a trunk agrees
with people, the analysis behind evaluating a new backbone.

Each LPIPS-family metric scored with ``run --per-layer`` stores, beside its scores, the distance
of every tap; the 2AFC score of one tap is that of a metric made of that layer alone (same
weights, same normalisation). Every cell gets the main 2AFC table's stratified bootstrap CI,
computed by the same code (the 2AFC :class:`~iqa_bench.reports.analyses.TaskAnalysis` score
under the report's :class:`~iqa_bench.stats.StatsOptions`), so a tap's cell reads exactly as a
metric's would. Read from the run directory through :mod:`iqa_bench.results`.

Example (skipped: it needs a run directory scored with ``--per-layer``):
    >>> from iqa_bench.results import load_run
    >>> table = layer_table(load_run("runs/bapps/20261203-bapps"))  # doctest: +SKIP
    >>> print(layer_markdown(table))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from ..results import Run, TwoAFCData
from ..stats import StatsOptions
from .analyses import task_analysis
from .summary import Cell, MetricRow, metric_row, subset_counts
from .tables import best_flags, latex_cell, latex_escape, latex_table_head, plain_cell

__all__ = [
    "LAYER_CSV_COLUMNS",
    "LayerRow",
    "LayerTable",
    "layer_csv",
    "layer_latex",
    "layer_markdown",
    "layer_note",
    "layer_section",
    "layer_table",
]

#: Columns of ``per_layer_2afc.csv``.
LAYER_CSV_COLUMNS = ("metric", "tap", "subset", "score", "ci_low", "ci_high", "n")


@dataclass(frozen=True)
class LayerRow:
    """The 2AFC agreement of one tap of one metric.

    Attributes:
        tap: Trunk tap (module name).
        row: The tap's cells, as the main table builds a metric's row: ``row.metric`` is the
            metric's name, ``row.subsets`` a :class:`~.summary.Cell` (percent with its CI) per
            subset, ``row.avg`` the plain mean over subsets with its CI.
    """

    tap: str
    row: MetricRow

    @property
    def metric(self) -> str:
        """The metric's name."""
        return self.row.metric

    def cells(self, subsets: tuple[str, ...]) -> tuple[Cell | None, ...]:
        """Cell per subset (``None`` where the tap lost every sample of it), then the avg."""
        return (*(self.row.subsets.get(s) for s in subsets), self.row.avg)


@dataclass(frozen=True)
class LayerTable:
    """Every per-layer row of a run, with the settings behind their CIs.

    Attributes:
        subsets: 2AFC subsets in the judgments' order.
        rows: One row per metric and tap, metrics in the report's order, taps in trunk order.
        options: The resampling settings of the CIs (those of the main table).
        missing: The run's other scored metrics, which stored no per-layer 2AFC distances.
    """

    subsets: tuple[str, ...]
    rows: tuple[LayerRow, ...]
    options: StatsOptions
    missing: tuple[str, ...] = ()

    def best(self) -> tuple[tuple[bool, ...], ...]:
        """Per row, per column (subsets then avg): whether the tap is its metric's best there at
        the printed precision (ties all marked), as the main table marks the best metric."""
        flags: dict[int, tuple[bool, ...]] = {}
        for metric in dict.fromkeys(r.metric for r in self.rows):
            index = [i for i, r in enumerate(self.rows) if r.metric == metric]
            marks = best_flags([self.rows[i].cells(self.subsets) for i in index])
            flags.update(zip(index, marks, strict=True))
        return tuple(flags[i] for i in range(len(self.rows)))


def _tap_view(data, column: int) -> TwoAFCData:
    """The aligned 2AFC data of one tap, as the main table's loader gives a metric's."""
    d0, d1 = data.distances["d0"][:, column], data.distances["d1"][:, column]
    return TwoAFCData(
        data.sample_id, data.subset, d0, d1, data.judgment, data.n_failed, data.subset_order
    )


def layer_table(run: Run, options: StatsOptions | None = None) -> LayerTable:
    """Per metric and tap with per-layer 2AFC distances stored in ``run``: its 2AFC cells.

    Args:
        run: A loaded run.
        options: Resampling settings; pass the main table's (``summary.options``) so both
            tables' CIs come from the same resamples. Defaults to ``StatsOptions()``.

    Raises:
        InputError: The run stored no per-layer 2AFC distances (naming the command that does).
    """
    options = options or StatsOptions()
    rows: list[LayerRow] = []
    missing = []
    order = run.subsets("2afc") if "2afc" in run.tasks() else ()
    analysis = task_analysis("2afc")
    for metric in run.metric_names() if order else ():
        layers = run.layer_distances(metric, "2afc")
        if layers is None:
            missing.append(metric)
            continue
        present, n = subset_counts(layers.data.subset, order)
        group = run.metrics[metric].group
        for column, tap in enumerate(layers.taps):
            boot = analysis.score(_tap_view(layers.data, column), present, options)
            rows.append(
                LayerRow(tap, metric_row(metric, group, boot, n, layers.data.n_failed, order))
            )
    if not order:
        raise InputError(
            f"--per-layer: the per-layer table scores 2AFC agreement and {run.path} has no 2afc "
            f"task (tasks: {', '.join(run.tasks())}); read its per-layer distances with "
            "iqa_bench.results.load_run(RUN_DIR).layer_distances(metric, task) instead."
        )
    if not rows:
        raise InputError(
            f"--per-layer: {run.path} holds no per-layer 2AFC distances; score the run with "
            "`iqa-bench run --per-layer` (LPIPS-family metrics, a 2AFC dataset) first."
        )
    return LayerTable(tuple(order), tuple(rows), options, tuple(missing))


def layer_note(table: LayerTable) -> str:
    """The sentence under every rendering of the table: what a cell, ± and bold mean."""
    o = table.options
    missing = (
        f" Not in the table, having no per-layer distances stored: {', '.join(table.missing)} "
        "(`iqa-bench run --per-layer` stores them for LPIPS-family metrics)."
        if table.missing
        else ""
    )
    return (
        "Each row scores one tap's distance alone (its term of the metric's sum: same linear "
        "weights, and for semantic-weighted cards the same reference weighting), 2AFC in %. "
        f"Score ± half-width of the {round(100 * o.confidence)}% bootstrap CI (stratified "
        f"percentile, n_boot={o.n_boot}, seed={o.seed}; the main 2AFC table's). Avg = plain "
        "mean over subsets. Bold = the best tap of each metric per column at the printed "
        "precision (ties all bold)." + missing
    )


def layer_markdown(table: LayerTable) -> str:
    """A Markdown table: metric, tap, 2AFC (%) ± CI half-width per subset and their mean."""
    head = ["metric", "tap", *table.subsets, "avg"]
    lines = ["| " + " | ".join(head) + " |", "| :-- | :-- |" + " --: |" * (len(head) - 2)]
    for row, best in zip(table.rows, table.best(), strict=True):
        cells = [
            f"**{plain_cell(c)}**" if b else plain_cell(c)
            for c, b in zip(row.cells(table.subsets), best, strict=True)
        ]
        lines.append("| " + " | ".join([row.metric, row.tap, *cells]) + " |")
    return "\n".join(lines)


def layer_latex(table: LayerTable) -> str:
    """A booktabs ``table`` float of the per-layer table (metrics as row groups)."""
    ncol = len(table.subsets) + 1
    title = "Per-layer 2AFC agreement (%)"
    lines = latex_table_head(title, layer_note(table), "tab:iqa-per-layer", ncol, fit_width=True)
    # TeX would set the command's "--" as an en dash: typewriter type with the dashes kept apart.
    command = "`iqa-bench run --per-layer`"
    lines = [line.replace(command, r"\texttt{iqa-bench run -{}-per-layer}") for line in lines]
    lines.append(" & ".join(["Tap", *(latex_escape(s) for s in table.subsets), "Avg"]) + r" \\")
    metric = None
    for row, best in zip(table.rows, table.best(), strict=True):
        if row.metric != metric:
            metric = row.metric
            lines += [
                r"\midrule",
                rf"\multicolumn{{{ncol + 1}}}{{l}}{{\emph{{{latex_escape(metric)}}}}} \\",
            ]
        cells = [latex_cell(c, b) for c, b in zip(row.cells(table.subsets), best, strict=True)]
        lines.append(" & ".join([latex_escape(row.tap), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines)


def layer_csv(table: LayerTable) -> str:
    """Tidy CSV, columns :data:`LAYER_CSV_COLUMNS`: score and CI bounds as fractions, subset
    ``avg`` the plain mean over subsets (its ``n`` the total); empty where undefined."""
    lines = [",".join(LAYER_CSV_COLUMNS)]
    for row in table.rows:
        cells = [*row.row.subsets.items(), ("avg", row.row.avg)]
        for subset, cell in cells:
            values = (cell.score, cell.ci_low, cell.ci_high)
            shown = ",".join(repr(v / 100) if math.isfinite(v) else "" for v in values)
            lines.append(f"{row.metric},{row.tap},{subset},{shown},{cell.n}")
    return "\n".join(lines) + "\n"


def layer_section(table: LayerTable) -> str:
    """The report's Markdown section around :func:`layer_markdown`."""
    return (
        "\n## Per-layer 2AFC agreement\n\n"
        + layer_markdown(table)
        + f"\n\n*{layer_note(table)} The depth whose row is highest agrees best with the "
        "judges.*\n"
    )

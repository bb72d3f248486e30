"""Reports of a benchmark run: paper-style tables, figures, a self-contained HTML page.

Reports read a run directory through :mod:`iqa_bench.results` and compute everything with
:mod:`iqa_bench.stats`; they never import torch. :func:`write_report` writes, into
``<reports_root>/<dataset>/<run-id>/``:

- ``report.md`` and ``report.tex`` (Markdown / LaTeX booktabs tables in the LPIPS paper's layout),
- ``results.csv`` (tidy numbers, columns documented in :mod:`iqa_bench.reports.tables`),
- ``report.html`` (one self-contained page), ``figures/*.png`` and ``figures/*.pdf``,
- ``summary.json`` (every number, machine-readable).

Example:
    >>> from iqa_bench.reports import write_report
    >>> write_report("runs/synthetic/20261126-131500-synthetic")  # doctest: +SKIP
    PosixPath('reports/synthetic/20261126-131500-synthetic')
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..results import load_run
from ..stats import StatsOptions
from .analyses import TASK_ANALYSES, TaskAnalysis, register_task_analysis, task_analysis
from .compare import ComparisonRow, RunComparison, compare_data, compare_runs
from .documents import latex_report, markdown_report
from .figures import write_figures
from .html import write_html
from .layers import LayerTable, layer_csv, layer_table
from .summary import RunSummary, summarize, terminal_summary
from .tables import CSV_COLUMNS, csv_text

__all__ = [
    "CSV_COLUMNS",
    "TASK_ANALYSES",
    "ComparisonRow",
    "LayerTable",
    "RunComparison",
    "RunSummary",
    "StatsOptions",
    "TaskAnalysis",
    "compare_data",
    "compare_runs",
    "register_task_analysis",
    "summarize",
    "task_analysis",
    "terminal_summary",
    "write_report",
]


def write_report(
    run_dir: str | Path,
    reports_root: str | Path = "reports",
    options: StatsOptions | None = None,
    *,
    n_boot: int | None = None,
    n_perm: int | None = None,
    seed: int | None = None,
    summary: RunSummary | None = None,
    per_layer: bool = False,
    layers: LayerTable | None = None,
) -> Path:
    """Writes every report of a run and returns their folder.

    Args:
        run_dir: The run directory (contains ``manifest.json``).
        reports_root: Parent of the ``<dataset>/<run-id>/`` report folder.
        options: Resampling settings; defaults to ``StatsOptions()`` (1000 bootstrap
            resamples, 10000 sign flips, seed 0, 95% CIs).
        n_boot: Overrides ``options.n_boot`` when given.
        n_perm: Overrides ``options.n_perm`` when given.
        seed: Overrides ``options.seed`` when given.
        summary: An already computed ``summarize(run_dir, ...)`` to render (saves recomputing
            it; the resampling settings are then those of the summary).
        per_layer: Add the per-layer 2AFC table (a section of ``report.md``, ``report.tex``
            and ``report.html``, and ``per_layer_2afc.csv``) from distances stored by
            ``run --per-layer``, with the summary's CIs.
        layers: An already computed ``layer_table(run, summary.options)`` to render (implies
            ``per_layer``).

    Returns:
        ``<reports_root>/<dataset>/<run-id>``.

    Raises:
        FileNotFoundError: When the run directory or one of its files is missing.
        ValueError: When the run does not follow the data contract, or with ``per_layer``
            holds no per-layer distances.

    Example:
        >>> folder = write_report(run_dir, "/tmp/reports", StatsOptions(n_boot=200))  # doctest: +SKIP
        >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
        ['figures', 'report.html', 'report.md', 'report.tex', 'results.csv', 'summary.json']
    """
    run = load_run(run_dir)
    if summary is not None:
        options = summary.options
    else:
        options = (options or StatsOptions()).with_overrides(n_boot, n_perm, seed)
    if per_layer and layers is None:
        layers = layer_table(run, options)  # fails before anything is written
    if layers is not None and layers.options != options:
        raise InputError(
            f"layers: computed with {layers.options}, the report's tables with {options}; "
            "pass layer_table(run, summary.options) so every CI shares the settings."
        )
    if summary is None:
        summary = summarize(run, options)
    folder = Path(reports_root) / run.dataset.name / run.run_id
    folder.mkdir(parents=True, exist_ok=True)
    figures = write_figures(summary, folder / "figures")
    relative = {name: path.relative_to(folder).as_posix() for name, path in figures.items()}
    if layers is not None:
        (folder / "per_layer_2afc.csv").write_text(layer_csv(layers), encoding="utf-8")
    (folder / "report.md").write_text(markdown_report(summary, relative, layers), encoding="utf-8")
    (folder / "report.tex").write_text(latex_report(summary, layers), encoding="utf-8")
    (folder / "results.csv").write_text(csv_text(summary), encoding="utf-8")
    write_html(summary, figures, folder / "report.html", layers)
    (folder / "summary.json").write_text(
        json.dumps(summary.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return folder

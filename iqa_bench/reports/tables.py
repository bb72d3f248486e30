"""Paper-style tables (Markdown, LaTeX booktabs) and the tidy CSV of a :class:`RunSummary`.

Tables follow the LPIPS paper's layout: one row per metric, grouped classical -> deep baseline ->
LPIPS -> custom, then the human ceiling (2AFC only); one column per subset in the dataset's
order, then "Avg" (plain mean over subsets). Cells read ``72.3 ± 1.1``: the score in percent
and the half-width of its 95% stratified percentile-bootstrap CI (the CI need not be
symmetric; the CSV has the exact bounds). The best metric per column is bold (ties at the
printed precision are all bold; the human ceiling never is).

Tidy CSV (``results.csv``), exactly these columns, one row per metric x task x subset plus one
``subset="avg"`` row per metric x task:

- ``dataset``: dataset name from the manifest (e.g. ``bapps``, ``synthetic``).
- ``task``: ``2afc`` or ``jnd``; for MOS datasets ``mos-srcc``, ``mos-krcc`` or ``mos-plcc`` (the
  statistic; subset ``all`` = every image, then one row per distortion type).
- ``metric``: metric name; the 2AFC human ceiling is the row ``human-ceiling``.
- ``group``: ``classical``, ``deep-baseline``, ``lpips``, ``custom``, or ``human``.
- ``subset``: subset name, or ``avg`` for the plain mean over subsets (a subset itself named
  ``avg`` is written ``avg (subset)``, so rows stay unique by dataset, task, metric, subset).
- ``score``: percent (2AFC accuracy x 100, JND AP x 100); for ``mos-*`` the correlation.
- ``ci_low``, ``ci_high``: CI bounds in the same unit.
- ``n``: samples behind the score (for ``avg``: all subsets together), failed samples excluded.

Example:
    >>> print(markdown_table(score_table(summary, "2afc")))  # doctest: +SKIP
    | Group | Metric | traditional | cnn | ... | Avg |
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .analyses import task_analysis
from .mos import mos_tidy_rows
from .summary import (
    HUMAN,
    NO_HUMAN_CEILING,
    UNKNOWN_TASK,
    Cell,
    MetricRow,
    RunSummary,
    TaskSummary,
    excluded_sentence,
)

__all__ = [
    "CSV_COLUMNS",
    "GROUP_LABELS",
    "LATEX_PREAMBLE",
    "Table",
    "TableRow",
    "best_flags",
    "csv_text",
    "latex_cell",
    "latex_escape",
    "latex_table",
    "markdown_table",
    "plain_cell",
    "score_table",
    "tidy_rows",
    "write_csv",
]

CSV_COLUMNS = ("dataset", "task", "metric", "group", "subset", "score", "ci_low", "ci_high", "n")
GROUP_LABELS = {
    "classical": "Classical",
    "deep-baseline": "Deep baseline",
    "lpips": "Learned (LPIPS, DISTS)",
    "custom": "Custom",
    "human": "Human",
}


@dataclass(frozen=True)
class TableRow:
    """One printed row: its label, group, cells (one per column) and which cells are best."""

    metric: str
    group: str
    cells: tuple[Cell | None, ...]
    bold: tuple[bool, ...]


@dataclass(frozen=True)
class Table:
    """A renderer-neutral score table.

    Attributes:
        task: The task's name, e.g. ``"2afc"`` or ``"jnd"``.
        title: E.g. ``"2AFC accuracy (%) on bapps (val)"``.
        caption: Sentence explaining values, CI, bold and ``n``.
        columns: Subset names then ``"Avg"``.
        rows: Metric rows in grouped order, then the human row if any.
    """

    task: str
    title: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[TableRow, ...]


def _cells(row: MetricRow, subsets: tuple[str, ...]) -> tuple[Cell | None, ...]:
    return tuple(row.subsets.get(s) for s in subsets) + (row.avg,)


def best_flags(rows: list[tuple[Cell | None, ...]]) -> list[tuple[bool, ...]]:
    """Per row and column, whether the cell is the column's best (highest) at one decimal."""

    # Compare at the printed precision, so two rows that read the same are both bold.
    def shown(c: Cell | None) -> float:
        return round(c.score, 1) if c is not None and math.isfinite(c.score) else -math.inf

    ncol = len(rows[0]) if rows else 0
    best = [max(shown(r[j]) for r in rows) for j in range(ncol)]
    return [
        tuple(shown(r[j]) == best[j] and best[j] > -math.inf for j in range(ncol)) for r in rows
    ]


def score_table(summary: RunSummary, task: str) -> Table:
    """Builds the table of one task from a summary.

    Args:
        summary: The run's :class:`RunSummary`.
        task: A task of ``summary.tasks``, e.g. ``"2afc"`` or ``"jnd"``.

    Raises:
        ValueError: When the run has no such task.

    Example:
        >>> score_table(summary, "2afc").columns  # doctest: +SKIP
        ('traditional', 'cnn', 'superres', 'Avg')
    """
    if task not in summary.tasks:
        raise InputError(f"task={task!r} is not in this run; it has {list(summary.tasks)}.")
    ts: TaskSummary = summary.tasks[task]
    cells = [_cells(r, ts.subsets) for r in ts.rows]
    rows = [
        TableRow(r.metric, r.group, c, b)
        for r, c, b in zip(ts.rows, cells, best_flags(cells), strict=True)
    ]
    if ts.human is not None:
        human = _cells(ts.human, ts.subsets)
        rows.append(TableRow(HUMAN, "human", human, (False,) * len(human)))
    ds = summary.dataset
    kind = "SYNTHETIC judgments, not human" if ds.synthetic else "human judgments"
    split = f", {ds.split} split" if ds.split else ""
    counts = {
        s: [r.subsets[s].n for r in ts.rows + ((ts.human,) if ts.human else ()) if s in r.subsets]
        for s in ts.subsets
    }
    n = ", ".join(f"{s} {max(c)}" for s, c in counts.items() if c)
    if any(len(set(c)) > 1 or len(c) < len(ts.rows) for c in counts.values()):
        n += " (fewer where a metric failed on samples; see results.csv)"
    pct = round(100 * summary.confidence)
    caption = (
        f"Score ± half-width of the {pct}% bootstrap CI (stratified percentile, "
        f"n_boot={summary.n_boot}). Avg = plain mean over subsets. Bold = best metric per "
        "column (human ceiling excluded)."
    )
    analysis = task_analysis(task)
    if ts.human is not None and analysis.human_note:
        caption += " " + analysis.human_note
    elif analysis.human is not None:
        caption += f" {NO_HUMAN_CEILING[0].upper()}{NO_HUMAN_CEILING[1:]}."
    if n:
        caption += f" Samples per subset: {n}."
    if summary.excluded_total(task=task) or summary.excluded_total(task=UNKNOWN_TASK):
        caption += " " + excluded_sentence(summary, task)
    return Table(
        task=task,
        title=f"{analysis.title} on {ds.name}{split} ({kind})",
        caption=caption,
        columns=(*ts.subsets, "Avg"),
        rows=tuple(rows),
    )


def plain_cell(cell: Cell | None) -> str:
    """A cell as text: ``score ± half-width`` at one decimal, ``-`` when undefined."""
    if cell is None or not math.isfinite(cell.score):
        return "-"
    if not math.isfinite(cell.half_width):
        return f"{cell.score:.1f}"
    return f"{cell.score:.1f} ± {cell.half_width:.1f}"


def markdown_table(table: Table) -> str:
    """GitHub-flavoured pipe table with a bold title line before and the caption after.

    Example:
        >>> print(markdown_table(score_table(summary, "jnd")))  # doctest: +SKIP
    """
    header = ["Group", "Metric", *table.columns]
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(header) + " |",
        "| :-- | :-- | " + " | ".join("--:" for _ in table.columns) + " |",
    ]
    for row in table.rows:
        cells = [
            f"**{plain_cell(c)}**" if bold else plain_cell(c)
            for c, bold in zip(row.cells, row.bold, strict=True)
        ]
        name = row.metric.replace("|", "\\|")
        lines.append(f"| {GROUP_LABELS.get(row.group, row.group)} | {name} | {' | '.join(cells)} |")
    lines += ["", f"*{table.caption}*"]
    return "\n".join(lines)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


#: The opening of every standalone LaTeX document the reports write (report.tex, table.tex).
LATEX_PREAMBLE = (
    r"\documentclass{article}",
    r"\usepackage[T1]{fontenc}",
    r"\usepackage[utf8]{inputenc}",
    r"\usepackage[margin=2cm]{geometry}",
    r"\usepackage{booktabs}",
    r"\usepackage{graphicx}",
    r"\begin{document}",
)


def latex_escape(text: str) -> str:
    """Escapes LaTeX special characters (``my_metric`` -> ``my\\_metric``).

    Example:
        >>> latex_escape("a_b & 5%")
        'a\\\\_b \\\\& 5\\\\%'
    """
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$").replace("²", r"$^2$")


def latex_cell(cell: Cell | None, bold: bool) -> str:
    """A cell as LaTeX: the score, bold if ``bold``, with its CI half-width as a small ±."""
    if cell is None or not math.isfinite(cell.score):
        return "--"
    value = f"{cell.score:.1f}"
    if bold:
        value = rf"\textbf{{{value}}}"
    if math.isfinite(cell.half_width):
        value += rf"\,{{\scriptsize$\pm${cell.half_width:.1f}}}"
    return value


def latex_table_head(
    title: str, caption: str, label: str, ncol: int, *, fit_width: bool = False
) -> list[str]:
    """Opening lines of a booktabs ``table`` float up to ``\\toprule`` (one label column, then
    ``ncol`` right-aligned ones); ``fit_width`` shrinks a table wider than the line (closing it
    then needs ``\\end{tabular}}``)."""
    return [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        r"\setlength{\tabcolsep}{4pt}",
        rf"\caption{{{latex_escape(title)}. {latex_escape(caption)}}}",
        rf"\label{{{label}}}",
        *(
            [r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"]
            if fit_width
            else []
        ),
        rf"\begin{{tabular}}{{l{'r' * ncol}}}",
        r"\toprule",
    ]


def latex_table(table: Table, label: str | None = None) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``).

    Args:
        table: From :func:`score_table`.
        label: ``\\label`` key; defaults to ``tab:iqa-<task>``.

    Example:
        >>> print(latex_table(score_table(summary, "2afc")))  # doctest: +SKIP
        \\begin{table}[htbp]
    """
    ncol = len(table.columns)
    lines = latex_table_head(table.title, table.caption, label or "tab:iqa-" + table.task, ncol) + [
        " & ".join(["Metric", *(latex_escape(c) for c in table.columns)]) + r" \\"
    ]
    group = None
    for row in table.rows:
        if row.group != group:
            group = row.group
            lines.append(r"\midrule")
            if group != "human":
                name = latex_escape(GROUP_LABELS.get(group, group))
                lines.append(rf"\multicolumn{{{ncol + 1}}}{{l}}{{\emph{{{name}}}}} \\")
        label_text = "Human (ceiling)" if row.metric == HUMAN else latex_escape(row.metric)
        cells = [latex_cell(c, b) for c, b in zip(row.cells, row.bold, strict=True)]
        lines.append(" & ".join([label_text, *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def tidy_rows(summary: RunSummary) -> list[dict[str, object]]:
    """One dict per metric x task x subset (plus ``avg``), keys exactly :data:`CSV_COLUMNS`.

    Example:
        >>> sorted(tidy_rows(summary)[0]) == sorted(CSV_COLUMNS)  # doctest: +SKIP
        True
    """
    name = summary.dataset.name
    records: list[tuple] = []
    for task, ts in summary.tasks.items():
        rows = list(ts.rows) + ([ts.human] if ts.human is not None else [])
        for row in rows:
            # A subset named "avg" must not share its key with the mean-over-subsets row.
            subsets = [(f"{k} (subset)" if k == "avg" else k, c) for k, c in row.subsets.items()]
            for subset, cell in [*subsets, ("avg", row.avg)]:
                values = (cell.score, cell.ci_low, cell.ci_high)
                records.append((name, task, row.metric, row.group, subset, *values, cell.n))
    if summary.mos is not None:
        records += mos_tidy_rows(summary.mos, name)
    out: list[dict[str, object]] = []
    for record in records:
        shown = [round(v, 4) if math.isfinite(v) else "" for v in record[5:8]]
        out.append(dict(zip(CSV_COLUMNS, (*record[:5], *shown, record[8]), strict=True)))
    return out


def csv_text(summary: RunSummary) -> str:
    """The tidy CSV as text (header :data:`CSV_COLUMNS`, ``\\n`` line ends).

    Example:
        >>> csv_text(summary).splitlines()[0]  # doctest: +SKIP
        'dataset,task,metric,group,subset,score,ci_low,ci_high,n'
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(tidy_rows(summary))
    return buf.getvalue()


def write_csv(summary: RunSummary, path: str | Path) -> Path:
    """Writes :func:`csv_text` to ``path`` and returns it."""
    path = Path(path)
    path.write_text(csv_text(summary), encoding="utf-8")
    return path

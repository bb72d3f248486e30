"""The cross-dataset table papers print: several runs side by side, one column per headline.

Rows are metrics, grouped classical -> deep baseline -> LPIPS -> custom as in the report (within
a group, in the order the runs list them). Columns are the headline statistics of every task of
every run, as their :class:`~.analyses.TaskAnalysis` names them: "2AFC avg (%)" (BAPPS, NIGHTS),
"JND mAP (%)", and for MOS datasets (TID2013, KADID-10k, CSIQ, LIVE) SRCC and PLCC over all
images. Each run is read through :func:`iqa_bench.results.load_run` and summarised by
:func:`~.summary.summarize` with one :class:`~iqa_bench.stats.StatsOptions`, so every cell is the
number that run's own report shows under the same settings (nothing is scored again).

Rules:

- One run per (dataset, split, task): a second run with the same column is an error naming both
  directories (score every metric into one run directory instead; ``iqa-bench run --out DIR``
  reuses what is finished there).
- Bold marks the best metric per column at the printed precision (ties are all bold); every
  headline is an agreement score, higher = better.
- A metric that a run skipped shows ``—†`` (the note gives the reason), one the run never listed
  ``—``, and one whose headline is undefined (it lost every sample of a subset) ``n/a``.
- Notes carry the CI level and resamples, units, synthetic-data warnings, excluded samples and the
  run behind every column.

Example:
    >>> from iqa_bench.reports.cross_table import cross_table, render_cross_table
    >>> table = cross_table(["runs/bapps/A", "runs/tid2013/B"])  # doctest: +SKIP
    >>> print(render_cross_table(table, "md"))  # doctest: +SKIP
    **Agreement with human judgments across datasets**
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..results import GROUP_ORDER, load_run
from ..stats import Estimate, StatsOptions
from .analyses import task_analysis
from .html import REPORT_CSS  # the same look as report.html
from .mos import LOGISTIC
from .mos_tables import mos_notes
from .summary import Cell, RunSummary, dataset_warning, excluded_sentence, summarize
from .tables import GROUP_LABELS, LATEX_PREAMBLE, latex_escape

__all__ = [
    "CROSS_CSV_COLUMNS",
    "NOT_RUN",
    "OK",
    "SKIPPED",
    "TABLE_FILES",
    "UNDEFINED",
    "Column",
    "CrossRow",
    "CrossTable",
    "Entry",
    "cross_csv",
    "cross_html",
    "cross_latex",
    "cross_markdown",
    "cross_table",
    "render_cross_table",
    "write_cross_table",
]

OK = "ok"
SKIPPED = "skipped"
NOT_RUN = "not run"
UNDEFINED = "undefined"
#: How a missing entry prints in Markdown/HTML and in LaTeX.
MARKS = {SKIPPED: ("—†", r"---$^\dagger$"), NOT_RUN: ("—", "---"), UNDEFINED: ("n/a", "n/a")}
MARK_NOTES = {
    SKIPPED: "—† = the metric was skipped in that run (reasons below)",
    NOT_RUN: "— = the metric is not in that run",
    UNDEFINED: "n/a = undefined: the metric lost every sample of a subset, or has fewer than "
    "3 finite scores",
}
CROSS_CSV_COLUMNS = (
    "dataset",
    "card_version",
    "split",
    "task",
    "statistic",
    "metric",
    "group",
    "run_id",
    "status",
    "value",
    "ci_low",
    "ci_high",
    "n",
)
#: Format -> file name that :func:`write_cross_table` writes.
TABLE_FILES = {"md": "table.md", "tex": "table.tex", "csv": "table.csv", "html": "table.html"}
TITLE = "Agreement with human judgments across datasets"
#: The MOS headlines: attribute of a :class:`~.mos.MOSMetricRow` -> column label.
MOS_HEADLINES = {"srcc": "SRCC", "plcc": "PLCC"}


@dataclass(frozen=True)
class Column:
    """One headline of one task of one run.

    Attributes:
        run_dir: The run directory as given.
        run_id: The run's id.
        dataset: Dataset card name.
        card_version: Dataset card version.
        split: Scored split (``None`` when the manifest has none).
        task: Task name, e.g. ``"2afc"``.
        statistic: What the column shows, e.g. ``"2AFC avg (%)"`` or ``"SRCC"``.
        digits: Decimals printed.
        warning: The dataset's synthetic-data warning, or ``None``.
    """

    run_dir: str
    run_id: str
    dataset: str
    card_version: int | None
    split: str | None
    task: str
    statistic: str
    digits: int
    warning: str | None = None

    @property
    def source(self) -> str:
        """The dataset card and split, e.g. ``"bapps v1, val"``.

        Example:
            >>> Column("r", "id", "bapps", 1, "val", "2afc", "2AFC avg (%)", 1).source
            'bapps v1, val'
        """
        version = f" v{self.card_version}" if self.card_version is not None else ""
        split = f", {self.split}" if self.split else ""
        return f"{self.dataset}{version}{split}"

    @property
    def key(self) -> tuple[str, str | None, str]:
        """What must be unique across the table's runs: dataset, split and task."""
        return self.dataset, self.split, self.task


@dataclass(frozen=True)
class Entry:
    """One metric's value in one column: a :class:`~.summary.Cell` when ``status`` is ``ok``."""

    status: str
    cell: Cell | None = None

    def text(self, digits: int) -> str:
        """``"72.3 ± 1.1"`` (value ± CI half-width), or the mark of a missing entry.

        Example:
            >>> Entry(OK, Cell(72.31, 71.0, 73.2, 300)).text(1)
            '72.3 ± 1.1'
            >>> Entry(SKIPPED).text(1)
            '—†'
        """
        if self.status != OK or self.cell is None:
            return MARKS[self.status][0]
        half = self.cell.half_width
        value = f"{self.cell.score:.{digits}f}"
        return f"{value} ± {half:.{digits}f}" if math.isfinite(half) else value


@dataclass(frozen=True)
class CrossRow:
    """A metric's entries, one per column, and which of them are the column's best."""

    metric: str
    group: str
    entries: tuple[Entry, ...]
    bold: tuple[bool, ...]


@dataclass(frozen=True)
class CrossTable:
    """The renderer-neutral cross-dataset table.

    Attributes:
        columns: One per run x task headline, in the order the runs were given.
        rows: Metrics in grouped order.
        notes: Sentences printed under the table (CI, units, warnings, exclusions, runs).
        options: The resampling settings behind every interval.
    """

    columns: tuple[Column, ...]
    rows: tuple[CrossRow, ...]
    notes: tuple[str, ...]
    options: StatsOptions

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per column source whose judgments are synthetic (shown first)."""
        seen = dict.fromkeys(f"{c.source}: {c.warning}" for c in self.columns if c.warning)
        return tuple(seen)


@dataclass(frozen=True)
class _Source:
    """A column with the entries of the metrics its run lists (ok, skipped or undefined)."""

    column: Column
    entries: dict[str, Entry]


def _entry(cell: Cell) -> Entry:
    return Entry(OK, cell) if math.isfinite(cell.score) else Entry(UNDEFINED)


def _estimate_cell(e: Estimate, n: int) -> Cell:
    return Cell(e.value, e.low, e.high, n)


def _column(summary: RunSummary, run_dir: Path, task: str, statistic: str) -> Column:
    ds = summary.dataset
    return Column(
        run_dir=str(run_dir),
        run_id=summary.run_id,
        dataset=ds.name,
        card_version=ds.card_version,
        split=ds.split,
        task=task,
        statistic=statistic,
        digits=task_analysis(task).digits,
        warning=dataset_warning(ds),
    )


def _run_sources(summary: RunSummary, run_dir: Path) -> list[_Source]:
    """The run's columns: each per-subset task's avg, then the MOS SRCC and PLCC."""
    skipped = {m: Entry(SKIPPED) for m, _ in summary.skipped}
    out = []
    for task, ts in summary.tasks.items():
        column = _column(summary, run_dir, task, task_analysis(task).statistic)
        out.append(_Source(column, {**skipped, **{r.metric: _entry(r.avg) for r in ts.rows}}))
    if summary.mos is not None:
        for attr, label in MOS_HEADLINES.items():
            cells = {
                r.metric: _entry(_estimate_cell(getattr(r, attr), r.n)) for r in summary.mos.rows
            }
            out.append(_Source(_column(summary, run_dir, "mos", label), {**skipped, **cells}))
    return out


def _check_unique(sources: list[_Source]) -> None:
    seen: dict[tuple, Column] = {}
    for source in sources:
        c = source.column
        first = seen.setdefault((*c.key, c.statistic), c)
        if first is not c:
            raise InputError(
                f"RUN_DIR: {first.run_dir} and {c.run_dir} both score {c.task} on {c.source}; "
                "a table has one column per dataset, split and task. Pass one of them, or score "
                "every metric into one run (iqa-bench run --out DIR reuses finished results)."
            )


def _metric_order(summaries: list[RunSummary]) -> dict[str, str]:
    """Metric -> group for every metric of every run, grouped as the report groups them."""
    groups: dict[str, str] = {}
    for s in summaries:
        for name in [*s.metric_names(), *(m for m, _ in s.skipped)]:
            groups.setdefault(name, s.groups.get(name, "custom"))

    def rank(name: str) -> int:
        g = groups[name]
        return GROUP_ORDER.index(g) if g in GROUP_ORDER else len(GROUP_ORDER)

    return {name: groups[name] for name in sorted(groups, key=rank)}


def _select(groups: dict[str, str], metrics: Sequence[str] | None) -> dict[str, str]:
    if metrics is None:
        return groups
    unknown = [m for m in metrics if m not in groups]
    if unknown:
        raise InputError(
            f"--metrics: {', '.join(unknown)} not in any of the runs; they have "
            f"{', '.join(groups)}."
        )
    return {m: g for m, g in groups.items() if m in metrics}


def _best(entries: list[Entry], digits: int) -> list[bool]:
    # Compared at the printed precision, so two entries that read the same are both bold.
    shown = [
        round(e.cell.score, digits) if e.status == OK and e.cell else -math.inf for e in entries
    ]
    top = max(shown, default=-math.inf)
    return [s == top and top > -math.inf for s in shown]


def _rows(groups: dict[str, str], sources: list[_Source]) -> tuple[CrossRow, ...]:
    grid = [[s.entries.get(m, Entry(NOT_RUN)) for s in sources] for m in groups]
    flags = [_best([r[j] for r in grid], s.column.digits) for j, s in enumerate(sources)]
    return tuple(
        CrossRow(m, g, tuple(grid[i]), tuple(f[i] for f in flags))
        for i, (m, g) in enumerate(groups.items())
    )


def _statistic_notes(columns: tuple[Column, ...], options: StatsOptions) -> list[str]:
    tasks = {c.task for c in columns}
    pct = round(100 * options.confidence)
    notes = [
        f"Value ± half-width of the {pct}% percentile bootstrap CI ({options.n_boot} resamples, "
        f"seed {options.seed}); the CSV has the exact bounds and n. Bold = best metric per column "
        "at the printed precision (ties all bold); every column is higher = better."
    ]
    if tasks & {"2afc", "jnd"}:
        notes.append(
            "2AFC avg: accuracy in percent, the plain mean over subsets; JND mAP: average "
            "precision in percent, mean over subsets; both CIs resample within subsets."
        )
    if "mos" in tasks:
        notes.append(
            f"SRCC and PLCC (after a {LOGISTIC.upper()} logistic fit) with the MOS/DMOS over all "
            "images, oriented so that positive = agrees with people (DMOS negated, no absolute "
            "values); CIs resample images and refit the logistic in every resample."
        )
    return notes


def _run_notes(summaries: list[tuple[Path, RunSummary]], rows: tuple[CrossRow, ...]) -> list[str]:
    """Marks used, skip reasons, excluded samples and MOS caveats, then the run of each column."""
    used = {e.status for r in rows for e in r.entries} - {OK}
    notes = [MARK_NOTES[s] + "." for s in (SKIPPED, NOT_RUN, UNDEFINED) if s in used]
    shown = {r.metric for r in rows}
    for path, s in summaries:
        tag = f"{s.run_id} ({s.dataset.name})"
        notes += [f"† {m} in {tag}: {reason}" for m, reason in s.skipped if m in shown]
        if s.excluded:
            notes.append(f"{tag}: {excluded_sentence(s)}")
        if s.mos is not None:
            notes += [f"{tag}: {n}" for n in mos_notes(s) if n.split(":")[0] in shown]
        notes.append(f"Run {s.run_id}: {path} ({_provenance(s)}).")
    return notes + _card_notes([s for _, s in summaries], shown)


def _provenance(summary: RunSummary) -> str:
    package = summary.manifest.get("package") or {}
    commit = str(package.get("git_commit") or "unknown")
    dirty = " with uncommitted changes" if package.get("git_dirty") else ""
    return (
        f"{package.get('name', 'iqa-bench')} {package.get('version', '?')}, commit {commit}{dirty}"
    )


def _card_notes(summaries: list[RunSummary], shown: set[str]) -> list[str]:
    """A sentence per metric whose card version differs between runs (its numbers may too)."""
    versions: dict[str, dict[str, object]] = {}
    for s in summaries:
        for name, entry in (s.manifest.get("metrics") or {}).items():
            if name in shown and entry.get("status") == OK:
                versions.setdefault(name, {})[s.run_id] = entry.get("card_version")
    return [
        f"{name}: metric card versions differ between runs "
        + ", ".join(f"v{v} in {run}" for run, v in by_run.items())
        + "."
        for name, by_run in versions.items()
        if len(set(by_run.values())) > 1
    ]


def cross_table(
    run_dirs: Sequence[str | Path],
    options: StatsOptions | None = None,
    *,
    metrics: Sequence[str] | None = None,
) -> CrossTable:
    """Puts several runs side by side: metrics as rows, each task's headline as a column.

    Args:
        run_dirs: Run directories (each with ``manifest.json``), in column order.
        options: Resampling settings of every interval; defaults to ``StatsOptions()`` (what
            ``iqa-bench report`` uses by default).
        metrics: Only these metrics, in the table's grouped order; ``None`` keeps every metric
            of every run.

    Returns:
        A :class:`CrossTable`; render it with :func:`render_cross_table`.

    Raises:
        InputError: With no run, when two runs give the same dataset, split and task, or when
            ``metrics`` names a metric no run has.
        FileNotFoundError: When a run directory or one of its files is missing.

    Example:
        >>> cross_table([])
        Traceback (most recent call last):
        iqa_bench.errors.InputError: RUN_DIR: none given; pass one or more run directories.
    """
    if not run_dirs:
        raise InputError("RUN_DIR: none given; pass one or more run directories.")
    options = options or StatsOptions()
    summaries = [(Path(d), summarize(load_run(d), options)) for d in run_dirs]
    sources = [src for path, s in summaries for src in _run_sources(s, path)]
    _check_unique(sources)
    groups = _select(_metric_order([s for _, s in summaries]), metrics)
    rows = _rows(groups, sources)
    columns = tuple(s.column for s in sources)
    notes = _statistic_notes(columns, options) + _run_notes(summaries, rows)
    return CrossTable(columns, rows, tuple(notes), options)


def _header(column: Column) -> str:
    synthetic = " (synthetic)" if column.warning else ""
    return f"{column.source}{synthetic}: {column.statistic}"


def cross_markdown(table: CrossTable) -> str:
    """A GitHub-flavoured pipe table with a bold title, warnings first and the notes after.

    Example:
        >>> print(cross_markdown(CrossTable((), (), ("A note.",), StatsOptions())))
        **Agreement with human judgments across datasets**
        <BLANKLINE>
        | Group | Metric |
        | :-- | :-- |
        <BLANKLINE>
        - A note.
    """
    lines = [f"**{TITLE}**", ""]
    lines += [f"> **WARNING: {w}.**" for w in table.warnings]
    lines += [""] if table.warnings else []
    header = ["Group", "Metric", *(_header(c).replace("|", "\\|") for c in table.columns)]
    lines += [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join([":--", ":--", *("--:" for _ in table.columns)]) + " |",
    ]
    for row in table.rows:
        cells = [
            f"**{e.text(c.digits)}**" if b else e.text(c.digits)
            for e, c, b in zip(row.entries, table.columns, row.bold, strict=True)
        ]
        group = GROUP_LABELS.get(row.group, row.group)
        lines.append("| " + " | ".join([group, row.metric.replace("|", "\\|"), *cells]) + " |")
    lines += ["", *(f"- {n}" for n in table.notes)]
    return "\n".join(lines) + "\n"


def _spans(columns: tuple[Column, ...]) -> list[tuple[str, int]]:
    """Adjacent columns of one run and dataset share a header cell: ``(source, width)``."""
    spans: list[tuple[str, int]] = []
    previous = None
    for c in columns:
        here = (c.run_dir, c.source)
        if spans and here == previous:
            spans[-1] = (spans[-1][0], spans[-1][1] + 1)
        else:
            spans.append((c.source + (" (synthetic)" if c.warning else ""), 1))
        previous = here
    return spans


def _latex_entry(entry: Entry, digits: int, bold: bool) -> str:
    if entry.status != OK or entry.cell is None:
        return MARKS[entry.status][1]
    value = f"{entry.cell.score:.{digits}f}"
    value = rf"\textbf{{{value}}}" if bold else value
    half = entry.cell.half_width
    return value + (rf"\,{{\scriptsize$\pm${half:.{digits}f}}}" if math.isfinite(half) else "")


def _latex_note(note: str) -> str:
    return latex_escape(note).replace("—", "---").replace("†", r"$^\dagger$")


def _latex_head(table: CrossTable) -> list[str]:
    ncol = len(table.columns)
    spans = _spans(table.columns)
    tops = [rf"\multicolumn{{{w}}}{{c}}{{{latex_escape(s)}}}" for s, w in spans]
    rules, start = [], 2
    for _, width in spans:
        rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    return [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        r"\setlength{\tabcolsep}{4pt}",
        rf"\caption{{{latex_escape(TITLE)}.}}",
        r"\label{tab:iqa-cross}",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        rf"\begin{{tabular}}{{l{'r' * ncol}}}",
        r"\toprule",
        " & ".join(["", *tops]) + r" \\",
        "".join(rules),
        " & ".join(["Metric", *(latex_escape(c.statistic) for c in table.columns)]) + r" \\",
    ]


def _latex_float(table: CrossTable) -> list[str]:
    lines = _latex_head(table)
    ncol, group = len(table.columns), None
    for row in table.rows:
        if row.group != group:
            group = row.group
            name = latex_escape(GROUP_LABELS.get(group, group))
            lines += [r"\midrule", rf"\multicolumn{{{ncol + 1}}}{{l}}{{\emph{{{name}}}}} \\"]
        cells = [
            _latex_entry(e, c.digits, b)
            for e, c, b in zip(row.entries, table.columns, row.bold, strict=True)
        ]
        lines.append(" & ".join([latex_escape(row.metric), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\par\smallskip", r"\begin{minipage}{\linewidth}"]
    lines += [
        r"\footnotesize",
        *(_latex_note(n) + r"\par" for n in table.notes),
    ]
    return [*lines, r"\end{minipage}", r"\end{table}"]


def cross_latex(table: CrossTable) -> str:
    """A compilable LaTeX document (article, booktabs, graphicx) holding one ``table`` float;
    copy the float into a paper.

    Example:
        >>> text = cross_latex(CrossTable((), (), (), StatsOptions()))
        >>> text.splitlines()[0], r"\\usepackage{booktabs}" in text
        ('\\\\documentclass{article}', True)
    """
    out = list(LATEX_PREAMBLE)
    out += [rf"\noindent\textbf{{WARNING: {latex_escape(w)}.}}\par" for w in table.warnings]
    if table.columns:
        out += _latex_float(table)
    return "\n".join([*out, r"\end{document}"]) + "\n"


def cross_csv(table: CrossTable) -> str:
    """Tidy CSV: one row per metric x column, header :data:`CROSS_CSV_COLUMNS`; ``value``,
    ``ci_low``, ``ci_high`` (4 decimals) and ``n`` are empty unless ``status`` is ``ok``.

    Example:
        >>> cross_csv(CrossTable((), (), (), StatsOptions())).splitlines()[0]
        'dataset,card_version,split,task,statistic,metric,group,run_id,status,value,ci_low,ci_high,n'
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CROSS_CSV_COLUMNS)
    for row in table.rows:
        for e, c in zip(row.entries, table.columns, strict=True):
            cell = e.cell if e.status == OK else None
            values = (cell.score, cell.ci_low, cell.ci_high) if cell else ()
            shown = [round(v, 4) if math.isfinite(v) else "" for v in values] or ["", "", ""]
            head = (c.dataset, c.card_version, c.split or "", c.task, c.statistic)
            tail = (row.metric, row.group, c.run_id, e.status, *shown, cell.n if cell else "")
            writer.writerow((*head, *tail))
    return buf.getvalue()


def _html_table(table: CrossTable) -> list[str]:
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    tops = "".join(f'<th class="num" colspan="{w}">{e(s)}</th>' for s, w in _spans(table.columns))
    stats = "".join(f'<th class="num">{e(c.statistic)}</th>' for c in table.columns)
    out = [f"<table><thead><tr><th></th>{tops}</tr><tr><th>Metric</th>{stats}</tr></thead><tbody>"]
    group = None
    for row in table.rows:
        if row.group != group:
            group = row.group
            label = e(GROUP_LABELS.get(group, group))
            out.append(
                f'<tr class="group"><td colspan="{len(table.columns) + 1}">{label}</td></tr>'
            )
        cells = "".join(
            f'<td class="num{" best" if b else ""}">{e(x.text(c.digits))}</td>'
            for x, c, b in zip(row.entries, table.columns, row.bold, strict=True)
        )
        out.append(f"<tr><td>{e(row.metric)}</td>{cells}</tr>")
    return [*out, "</tbody></table>"]


def cross_html(table: CrossTable) -> str:
    """One self-contained page (the report's inline CSS, no scripts, no links out).

    Example:
        >>> page = cross_html(CrossTable((), (), ("A note.",), StatsOptions()))
        >>> page.startswith("<!DOCTYPE html>") and "<li>A note.</li>" in page
        True
    """
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>iqa-bench: {e(TITLE)}</title>",
        f"<style>{REPORT_CSS}</style></head><body>",
        f"<h1>{e(TITLE)}</h1>",
        *(f'<p class="warning" role="alert">WARNING: {e(w)}.</p>' for w in table.warnings),
        *(_html_table(table) if table.columns else []),
        '<ul class="caption">',
        *(f"<li>{e(n)}</li>" for n in table.notes),
        "</ul>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"


_RENDERERS = {"md": cross_markdown, "tex": cross_latex, "csv": cross_csv, "html": cross_html}


def render_cross_table(table: CrossTable, fmt: str) -> str:
    """The table as ``md`` (Markdown), ``tex`` (LaTeX document), ``csv`` (tidy) or ``html``.

    Example:
        >>> render_cross_table(CrossTable((), (), (), StatsOptions()), "pdf")
        Traceback (most recent call last):
        iqa_bench.errors.InputError: format: 'pdf' is not one of md, tex, csv, html.
    """
    if fmt not in _RENDERERS:
        raise InputError(f"format: {fmt!r} is not one of {', '.join(_RENDERERS)}.")
    return _RENDERERS[fmt](table)


def write_cross_table(table: CrossTable, out_dir: str | Path) -> dict[str, Path]:
    """Writes every format into ``out_dir`` (:data:`TABLE_FILES`) and returns format -> path.

    Example:
        >>> paths = write_cross_table(CrossTable((), (), (), StatsOptions()), tmp_path / "t")
        >>> sorted(p.name for p in paths.values())
        ['table.csv', 'table.html', 'table.md', 'table.tex']
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for fmt, name in TABLE_FILES.items():
        paths[fmt] = folder / name
        paths[fmt].write_text(render_cross_table(table, fmt), encoding="utf-8")
    return paths

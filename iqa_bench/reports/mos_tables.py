"""MOS correlation tables in Markdown, LaTeX (booktabs) and HTML, from a :class:`~.mos.MOSSummary`.

Two tables: correlations over all images (rows = metrics grouped as in the other tables; columns
SRCC, KRCC, PLCC with CI half-widths, n, logistic fit status) and SRCC per distortion type (rows =
types, columns = metrics, so that 25 KADID-10k types still read well). Cells read
``0.912 ± 0.010``; **bold** marks the best metric per column (overall) or per type, at the printed
precision (ties are all bold). Notes list failed logistic fits and excluded images.

Example:
    >>> print(corr_markdown(overall_table(summary)))  # doctest: +SKIP
    | Group | Metric | SRCC | KRCC | PLCC | n | Logistic fit |
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from ..errors import InputError
from ..stats import Estimate
from .mos import LOGISTIC, MOSSummary
from .summary import UNKNOWN_TASK, RunSummary, excluded_sentence
from .tables import GROUP_LABELS, latex_escape, latex_table_head

__all__ = [
    "CorrRow",
    "CorrTable",
    "corr_html",
    "corr_latex",
    "corr_markdown",
    "mos_notes",
    "overall_table",
    "type_table",
]

Value = Estimate | str | None


@dataclass(frozen=True)
class CorrRow:
    """One printed row: label, report group (``None`` for distortion-type rows), cells, bold."""

    label: str
    group: str | None
    cells: tuple[Value, ...]
    bold: tuple[bool, ...]


@dataclass(frozen=True)
class CorrTable:
    """A renderer-neutral correlation table.

    Attributes:
        key: Short name for LaTeX labels (``mos`` or ``mos-types``).
        title: Title line.
        caption: Sentence explaining values, CIs, orientation and bold.
        label_header: Header of the first column (``Metric`` or ``Distortion type``).
        columns: Headers of the value columns.
        rows: The rows.
    """

    key: str
    title: str
    caption: str
    label_header: str
    columns: tuple[str, ...]
    rows: tuple[CorrRow, ...]


def _text(value: Value) -> str:
    if isinstance(value, str):
        return value
    if value is None or not math.isfinite(value.value):
        return "-"
    half = (value.high - value.low) / 2
    return f"{value.value:.3f} ± {half:.3f}" if math.isfinite(half) else f"{value.value:.3f}"


def _best(values: list[Value]) -> list[bool]:
    shown = [
        round(v.value, 3) if isinstance(v, Estimate) and math.isfinite(v.value) else -math.inf
        for v in values
    ]
    top = max(shown, default=-math.inf)
    return [s == top and top > -math.inf for s in shown]


def _caption(summary: RunSummary, mos: MOSSummary, what: str, plcc: bool = True) -> str:
    pct = round(100 * summary.confidence)
    size = (
        "Images were scored at native resolution."
        if mos.resize is None
        else f"Images were resized to {mos.resize}x{mos.resize} before scoring."
    )
    negated = (
        "distances and DMOS are negated"
        if not mos.higher_is_better_mos
        else ("distances are negated")
    )
    fit = (
        f" PLCC follows a {LOGISTIC.upper()} logistic fit of the metric to the scores."
        if plcc
        else ""
    )
    return (
        f"{what} Value ± half-width of the {pct}% percentile bootstrap CI "
        f"(n_boot={summary.n_boot}; the CSV has the exact bounds). Scores: {mos.direction}; "
        f"correlations are oriented so that positive = agrees with people ({negated}; no "
        f"absolute values).{fit} Bold = best. {size}"
    )


def _title(summary: RunSummary, what: str) -> str:
    ds = summary.dataset
    kind = "SYNTHETIC judgments, not human" if ds.synthetic else "human judgments"
    return f"{what} on {ds.name} ({kind})"


def overall_table(summary: RunSummary) -> CorrTable:
    """SRCC, KRCC, PLCC over all images per metric (raises ``ValueError`` without MOS data)."""
    mos = _require(summary)
    cells = [
        (r.srcc, r.krcc, r.plcc, str(r.n), "converged" if r.fit.converged else "failed: raw r")
        for r in mos.rows
    ]
    flags = [_best([c[k] for c in cells]) for k in range(3)]
    rows = tuple(
        CorrRow(r.metric, r.group, c, (flags[0][i], flags[1][i], flags[2][i], False, False))
        for i, (r, c) in enumerate(zip(mos.rows, cells, strict=True))
    )
    what = (
        f"Correlation with {mos.score_name} over all {mos.n} images (per-type PLCC and KRCC are "
        "in results.csv)."
    )
    if summary.excluded_total(task="mos") or summary.excluded_total(task=UNKNOWN_TASK):
        what += " " + excluded_sentence(summary, "mos")
    return CorrTable(
        key="mos",
        title=_title(summary, f"Correlation with {mos.score_name}"),
        caption=_caption(summary, mos, what),
        label_header="Metric",
        columns=("SRCC", "KRCC", "PLCC", "n", "Logistic fit"),
        rows=rows,
    )


def type_table(summary: RunSummary) -> CorrTable:
    """SRCC per distortion type (rows) and metric (columns), with an ``all images`` first row."""
    mos = _require(summary)
    lines: list[tuple[str, list[Value]]] = [("all images", [r.srcc for r in mos.rows])]
    lines += [(t, [r.per_type[t].srcc for r in mos.rows]) for t in mos.subsets]
    rows = tuple(CorrRow(label, None, tuple(v), tuple(_best(v))) for label, v in lines)
    what = (
        f"SRCC with {mos.score_name} per distortion type; the intervals resample the images of "
        "each type."
    )
    return CorrTable(
        key="mos-types",
        title=_title(summary, "SRCC per distortion type"),
        caption=_caption(summary, mos, what, plcc=False),
        label_header="Distortion type",
        columns=tuple(r.metric for r in mos.rows),
        rows=rows,
    )


def mos_notes(summary: RunSummary) -> list[str]:
    """Sentences on failed logistic fits and excluded images (empty when all went well)."""
    mos = _require(summary)
    notes = []
    for r in mos.rows:
        if not r.fit.converged:
            notes.append(f"{r.metric}: {r.fit.message}.")
        elif r.fit_failures:
            notes.append(
                f"{r.metric}: the logistic refit failed in {r.fit_failures} of {summary.n_boot} "
                "bootstrap resamples; those use the raw Pearson r."
            )
        if r.n_nonfinite:
            notes.append(
                f"{r.metric}: {r.n_nonfinite} image(s) with an infinite distance (identical to "
                "the reference) left out."
            )
        if r.n_failed:
            notes.append(f"{r.metric}: {r.n_failed} image(s) failed (NaN score) and are left out.")
    return notes


def _require(summary: RunSummary) -> MOSSummary:
    if summary.mos is None:
        raise InputError("this run has no mos task; MOS tables need a MOS/DMOS dataset.")
    return summary.mos


def corr_markdown(table: CorrTable) -> str:
    """GitHub-flavoured pipe table with a bold title line before and the caption after."""
    grouped = any(r.group is not None for r in table.rows)
    header = (["Group"] if grouped else []) + [table.label_header, *table.columns]
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
        "| "
        + " | ".join([":--"] * (len(header) - len(table.columns)) + ["--:"] * len(table.columns))
        + " |",
    ]
    for row in table.rows:
        cells = [
            f"**{_text(c)}**" if b else _text(c) for c, b in zip(row.cells, row.bold, strict=True)
        ]
        label = [GROUP_LABELS.get(row.group or "", row.group or "")] if grouped else []
        lines.append("| " + " | ".join([*label, row.label.replace("|", "\\|"), *cells]) + " |")
    lines += ["", f"*{table.caption}*"]
    return "\n".join(lines)


def corr_latex(table: CorrTable) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    ncol = len(table.columns)

    def cell(value: Value, bold: bool) -> str:
        if isinstance(value, str):
            return latex_escape(value)
        if value is None or not math.isfinite(value.value):
            return "--"
        text = f"{value.value:.3f}"
        text = rf"\textbf{{{text}}}" if bold else text
        half = (value.high - value.low) / 2
        return text + (rf"\,{{\scriptsize$\pm${half:.3f}}}" if math.isfinite(half) else "")

    lines = latex_table_head(
        table.title, table.caption, f"tab:iqa-{table.key}", ncol, fit_width=True
    ) + [" & ".join([table.label_header, *(latex_escape(c) for c in table.columns)]) + r" \\"]
    group = object()
    for row in table.rows:
        if row.group != group:
            lines.append(r"\midrule")
            if row.group is not None:
                name = latex_escape(GROUP_LABELS.get(row.group, row.group))
                lines.append(rf"\multicolumn{{{ncol + 1}}}{{l}}{{\emph{{{name}}}}} \\")
            group = row.group
        cells = [cell(c, b) for c, b in zip(row.cells, row.bold, strict=True)]
        lines.append(" & ".join([latex_escape(row.label), *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(lines)


def corr_html(table: CorrTable) -> str:
    """The table as an HTML fragment (title, table, caption), styled by the report's CSS."""

    def e(value: object) -> str:
        return html.escape(str(value), quote=True)

    head = "".join(f'<th class="num">{e(c)}</th>' for c in table.columns)
    parts = [
        f"<h3>{e(table.title)}</h3>",
        f"<table><thead><tr><th>{e(table.label_header)}</th>{head}</tr></thead><tbody>",
    ]
    group = object()
    for row in table.rows:
        if row.group is not None and row.group != group:
            label = GROUP_LABELS.get(row.group, row.group)
            span = len(table.columns) + 1
            parts.append(f'<tr class="group"><td colspan="{span}">{e(label)}</td></tr>')
        group = row.group
        cells = "".join(
            f'<td class="num{" best" if b else ""}">{e(_text(c))}</td>'
            for c, b in zip(row.cells, row.bold, strict=True)
        )
        parts.append(f"<tr><td>{e(row.label)}</td>{cells}</tr>")
    parts += ["</tbody></table>", f'<p class="caption">{e(table.caption)}</p>']
    return "\n".join(parts)

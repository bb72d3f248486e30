"""A single self-contained HTML page: inline CSS, figures as base64 PNG, no scripts, no links out.

The page opens offline from a mail attachment or an artifact store and shows the same content
as ``report.md``: dataset (with a prominent warning for synthetic judgments), tables,
correlations, significance, figures, skipped metrics, failed samples and provenance.

Example:
    >>> write_html(summary, {"twoafc_subsets": Path("figures/twoafc_subsets.png")},
    ...            Path("report.html"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from pathlib import Path

from ..errors import DataNotFoundError
from .analyses import task_analysis
from .documents import (
    ALPHA,
    EXCLUDED_COLUMNS,
    FIGURE_ALT,
    METRIC_CARD_COLUMNS,
    excluded_examples,
    excluded_rows,
    metric_cards,
    provenance,
    significance_pairs,
    significance_rows,
)
from .layers import LayerTable, layer_note
from .mos_tables import corr_html, mos_notes, overall_table, type_table
from .summary import Cell, RunSummary, dataset_line, dataset_warning, excluded_sentence
from .tables import GROUP_LABELS, Table, score_table

__all__ = ["render_html", "write_html"]

REPORT_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #e5e5e5; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { border-bottom: 2px solid #333; } tr.group td { font-style: italic; color: #555;
       background: #f6f6f6; } tr.human td { border-top: 2px solid #333; }
.best { font-weight: 700; } .caption { font-size: 0.85rem; color: #555; max-width: 60rem; }
.warning { background: #fff1f0; border: 2px solid #cf1322; color: #820014; padding: 0.8rem 1rem;
           font-weight: 700; font-size: 1.1rem; border-radius: 4px; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; } code { font-size: 0.85rem; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(text: str, bold: bool = False) -> str:
    return f'<td class="num{" best" if bold else ""}">{_e(text)}</td>'


def _table_html(table: Table) -> str:
    head = "".join(f'<th class="num">{_e(c)}</th>' for c in table.columns)
    parts = [
        f"<h3>{_e(table.title)}</h3>",
        f"<table><thead><tr><th>Metric</th>{head}</tr></thead><tbody>",
    ]
    group = None
    for row in table.rows:
        if row.group != group and row.group != "human":
            label = GROUP_LABELS.get(row.group, row.group)
            parts.append(
                f'<tr class="group"><td colspan="{len(table.columns) + 1}">{_e(label)}</td></tr>'
            )
        group = row.group
        cells = "".join(_num(_cell_text(c), b) for c, b in zip(row.cells, row.bold, strict=True))
        cls = ' class="human"' if row.group == "human" else ""
        name = "Human (ceiling)" if row.group == "human" else row.metric
        parts.append(f"<tr{cls}><td>{_e(name)}</td>{cells}</tr>")
    parts += ["</tbody></table>", f'<p class="caption">{_e(table.caption)}</p>']
    return "\n".join(parts)


def _layer_html(table: LayerTable) -> str:
    """The per-layer 2AFC table in the score tables' style, metrics as row groups."""
    columns = (*table.subsets, "Avg")
    head = "".join(f'<th class="num">{_e(c)}</th>' for c in columns)
    parts = [
        "<h2>Per-layer 2AFC agreement</h2>",
        f"<table><thead><tr><th>Tap</th>{head}</tr></thead><tbody>",
    ]
    metric = None
    for row, best in zip(table.rows, table.best(), strict=True):
        if row.metric != metric:
            metric = row.metric
            parts.append(
                f'<tr class="group"><td colspan="{len(columns) + 1}">{_e(metric)}</td></tr>'
            )
        cells = row.cells(table.subsets)
        shown = "".join(_num(_cell_text(c), b) for c, b in zip(cells, best, strict=True))
        parts.append(f"<tr><td>{_e(row.tap)}</td>{shown}</tr>")
    note = _e(layer_note(table)).replace(
        "`iqa-bench run --per-layer`", "<code>iqa-bench run --per-layer</code>"
    )
    parts += ["</tbody></table>", f'<p class="caption">{note}</p>']
    return "\n".join(parts)


def _cell_text(cell: Cell | None) -> str:
    if cell is None or not math.isfinite(cell.score):
        return "-"
    hw = cell.half_width
    return f"{cell.score:.1f} ± {hw:.1f}" if math.isfinite(hw) else f"{cell.score:.1f}"


def _plain_table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    th = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(_num(c) if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _head(summary: RunSummary) -> list[str]:
    ds = summary.dataset
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>iqa-bench report {_e(summary.run_id)} ({_e(ds.name)})</title>",
        f"<style>{REPORT_CSS}</style></head><body>",
        f"<h1>iqa-bench report: {_e(summary.run_id)}</h1>",
    ]
    if dataset_warning(ds):
        out.append(f'<p class="warning" role="alert">WARNING: {_e(dataset_warning(ds))}.</p>')
    out.append(f"<p>Run <code>{_e(summary.run_id)}</code> on {_e(dataset_line(summary))}.</p>")
    if ds.description:
        out.append(f"<p>{_e(ds.description)}</p>")
    return out


def _score_sections(summary: RunSummary) -> list[str]:
    out = []
    for task in summary.tasks:
        out += [
            f"<h2>{_e(task_analysis(task).heading)}</h2>",
            _table_html(score_table(summary, task)),
        ]
    if summary.mos is not None:
        notes = "".join(f"<li>{_e(n)}</li>" for n in mos_notes(summary))
        out += [
            f"<h2>Correlation with {_e(summary.mos.score_name)}</h2>",
            corr_html(overall_table(summary)),
            f"<ul>{notes}</ul>" if notes else "",
            corr_html(type_table(summary)),
        ]
    return out


def _pairwise_sections(summary: RunSummary) -> list[str]:
    out = []
    if summary.preference:
        rows = [
            [m, f"{p.pearson:.3f}", f"{p.spearman:.3f}", str(p.n)]
            for m, p in summary.preference.items()
        ]
        out += [
            "<h2>Preference correlation (2AFC)</h2>",
            _plain_table(["Metric", "Pearson r", "Spearman ρ", "n"], rows, {1, 2, 3}),
            '<p class="caption">Correlation of the metric\'s preference d0 − d1 with the '
            "fraction of judges preferring p1 (h); positive = agrees with the judges.</p>",
        ]
    pairs = significance_pairs(summary)
    if pairs:
        sig = summary.significance
        rows = significance_rows(pairs)
        out += [
            "<h2>Significance of 2AFC differences</h2>",
            f"<p>Paired sign-flip permutation tests on per-sample 2AFC credits "
            f"({'exact' if sig.exact else f'n_perm={sig.n_perm}'}; {summary.significance_n} "
            f"samples valid for every metric), Holm-corrected over all {len(pairs)} pairs; "
            f"significant at α = {ALPHA}.</p>",
            _plain_table(
                ["Metric A", "Metric B", "A − B (pts)", "p", "p (Holm)", "Significant"],
                rows,
                {2, 3, 4},
            ),
        ]
    return out


def _figure_section(figures: Mapping[str, Path]) -> list[str]:
    if not figures:
        return []
    out = ["<h2>Figures</h2>"]
    for name, path in figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        alt = FIGURE_ALT.get(name, name)
        out.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
            f"<figcaption>{_e(alt)}</figcaption></figure>"
        )
    return out


def _missing_sections(summary: RunSummary) -> list[str]:
    """Skipped metrics and excluded samples."""
    out = ["<h2>Skipped metrics</h2>"]
    if summary.skipped:
        items = "".join(f"<li><b>{_e(m)}</b>: {_e(r)}</li>" for m, r in summary.skipped)
        out.append(f"<ul>{items}</ul>")
    else:
        out.append("<p>None.</p>")
    out += ["<h2>Excluded samples</h2>", f"<p>{_e(excluded_sentence(summary))}</p>"]
    if summary.excluded:
        out.append(_plain_table(EXCLUDED_COLUMNS, excluded_rows(summary), numeric={3}))
    examples = excluded_examples(summary)
    if examples:
        items = "".join(
            f"<li>{_e(stage)}, {_e(task)} <code>{_e(sample_id)}</code>: {_e(reason)}</li>"
            for stage, task, sample_id, reason in examples
        )
        out.append(f"<ul>{items}</ul>")
    return out


def _provenance_section(summary: RunSummary) -> list[str]:
    columns = (*METRIC_CARD_COLUMNS, ("note", "Note"))
    keys, header = [k for k, _ in columns], [h for _, h in columns]
    return [
        "<h2>Provenance</h2>",
        _plain_table(["Item", "Value"], [[k, v] for k, v in provenance(summary)]),
        "<h3>Metric cards</h3>",
        _plain_table(header, [[c[k] for k in keys] for c in metric_cards(summary)]),
    ]


def render_html(
    summary: RunSummary, figures: Mapping[str, Path], layers: LayerTable | None = None
) -> str:
    """The report page as a string (see :func:`write_html`)."""
    out = [
        *_head(summary),
        *_score_sections(summary),
        *([_layer_html(layers)] if layers is not None else []),
        *_pairwise_sections(summary),
        *_figure_section(figures),
        *_missing_sections(summary),
        *_provenance_section(summary),
        "</body></html>",
    ]
    return "\n".join(out) + "\n"


def write_html(
    summary: RunSummary,
    figures: Mapping[str, Path],
    out_path: str | Path,
    layers: LayerTable | None = None,
) -> Path:
    """Writes the self-contained report page.

    Args:
        summary: The run's summary.
        figures: Figure name -> PNG path; each is embedded as base64, so the page needs no files.
        out_path: Where to write the page.
        layers: The per-layer 2AFC table, shown after the score tables when given.

    Returns:
        ``out_path`` as a Path.

    Raises:
        FileNotFoundError: When a figure file does not exist.

    Example:
        >>> write_html(summary, {}, "report.html").name  # doctest: +SKIP
        'report.html'
    """
    for name, path in figures.items():
        if not Path(path).is_file():
            raise DataNotFoundError(
                f"figure {name!r} at {path} does not exist; write it first (write_figures) or "
                "leave it out of figures."
            )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(summary, figures, layers), encoding="utf-8")
    return out

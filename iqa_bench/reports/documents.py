"""Whole report documents in Markdown (``report.md``) and LaTeX (``report.tex``).

Both state the dataset, whether its judgments are synthetic, the metric card versions and the
run's provenance next to the tables, so a pasted table can always be traced back to its run.

Example:
    >>> Path("report.md").write_text(markdown_report(summary))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .analyses import task_analysis
from .layers import LayerTable, layer_latex, layer_section
from .mos_tables import corr_latex, corr_markdown, mos_notes, overall_table, type_table
from .summary import (
    EXCLUSION_STAGES,
    RunSummary,
    dataset_line,
    dataset_warning,
    excluded_sentence,
)
from .tables import LATEX_PREAMBLE, latex_escape, latex_table, markdown_table, score_table

__all__ = [
    "EXCLUDED_COLUMNS",
    "excluded_examples",
    "excluded_rows",
    "latex_report",
    "markdown_report",
    "metric_cards",
    "provenance",
    "resize_text",
    "significance_pairs",
]

ALPHA = 0.05
FIGURE_ALT = {
    "twoafc_subsets": "2AFC accuracy per subset with 95% CI error bars, human ceiling marked",
    "twoafc_vs_jnd": "2AFC average versus JND mAP per metric, with 95% CI bars",
    "significance": "Holm-adjusted p-values of pairwise 2AFC differences between metrics",
    "mos_correlations": "SRCC, KRCC and PLCC with the MOS over all images, with 95% CI bars",
    "mos_scatter": "Metric score versus MOS per metric, with the fitted logistic curve",
    "mos_types": "SRCC with the MOS per distortion type and metric (heat map)",
}


def resize_text(manifest: Mapping) -> str:
    """How images were sized for scoring, from the manifest's dataset ``load_size`` and
    ``resize`` (None = native)."""
    load = (manifest.get("dataset") or {}).get("load_size")
    size = manifest.get("resize")
    loaded = f"loaded at {load} px (shorter side; PIL bilinear, as the reference loader)"
    if size is None:
        return loaded if load else "native resolution (no resizing)"
    resized = f"resized to {size}x{size} (bilinear, antialiased) before scoring"
    return f"{loaded}, then {resized}" if load else resized


def provenance(summary: RunSummary) -> list[tuple[str, str]]:
    """``(label, value)`` pairs describing where the numbers come from, from the manifest.

    Example:
        >>> dict(provenance(summary))["git commit"]  # doctest: +SKIP
        'abc123def456'
    """
    m = summary.manifest
    pkg, env, ds = m.get("package") or {}, m.get("environment") or {}, summary.dataset.raw
    commit = str(pkg.get("git_commit") or "unknown")
    if pkg.get("git_dirty"):
        commit += " (uncommitted changes)"
    timings = m.get("timings") or {}
    items = [
        ("run id", summary.run_id),
        ("created", str(m.get("created", "unknown"))),
        ("package", f"{pkg.get('name', 'iqa-bench')} {pkg.get('version', '?')}"),
        ("git commit", commit),
        ("environment", ", ".join(f"{k} {v}" for k, v in env.items()) or "unknown"),
        (
            "dataset",
            f"{ds.get('name')} card v{ds.get('card_version')}, adapter "
            f"{ds.get('adapter', '?')}, split {ds.get('split', '?')}",
        ),
        (
            "judgments",
            "SYNTHETIC (constructed, not human)" if summary.dataset.synthetic else "human",
        ),
        ("dataset root", str(ds.get("root", "unknown"))),
        ("dataset source", summary.dataset.source or "unknown"),
        (
            "device / dtype / batch",
            f"{m.get('device', '?')} / {m.get('dtype', '?')} / {m.get('batch_size', '?')}",
        ),
        ("image size", resize_text(m)),
        ("timings", ", ".join(f"{k} {v}" for k, v in timings.items()) or "unknown"),
        (
            "statistics",
            f"{round(100 * summary.confidence)}% stratified percentile bootstrap, "
            f"n_boot={summary.n_boot}; sign-flip tests n_perm={summary.n_perm}, "
            f"Holm; seed={summary.seed}",
        ),
    ]
    if summary.mos is not None and not summary.tasks:
        items[-1] = (
            "statistics",
            f"{round(100 * summary.confidence)}% percentile bootstrap over images (per type: "
            f"within the type), n_boot={summary.n_boot}; 5PL logistic before PLCC; "
            f"seed={summary.seed}",
        )
    if summary.mos is not None:
        items.insert(
            7,
            (
                "scores",
                f"{summary.mos.direction} (observed {summary.mos.mos_min:g} "
                f"to {summary.mos.mos_max:g})",
            ),
        )
    return items


#: ``metric_cards`` keys and their column headers in the reports' metric-card tables.
METRIC_CARD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("metric", "Metric"),
    ("group", "Group"),
    ("status", "Status"),
    ("card_version", "Card version"),
    ("orientation", "Orientation"),
    ("computed_by", "Computed by"),
    ("weight_hashes", "Weight hashes"),
    ("timings_s", "Timings (s)"),
)


def computed_by(entry: dict) -> str:
    """``"piq 0.8.0"`` for a bridged metric's manifest entry, ``"native"`` for the suite's own.

    Example:
        >>> computed_by({"library": "piq", "library_version": "0.8.0"}), computed_by({})
        ('piq 0.8.0', 'native')
    """
    library = entry.get("library")
    if not library:
        return "native"
    return f"{library} {entry.get('library_version') or '(version unknown)'}"


def metric_cards(summary: RunSummary) -> list[dict[str, str]]:
    """One dict per metric (ok first, then skipped) with its card version and provenance.

    Keys: ``metric, group, status, card_version, orientation, computed_by, weight_hashes,
    timings_s, note``; ``computed_by`` is ``native`` or the bridged library and version.
    """
    entries = summary.manifest.get("metrics") or {}
    names = summary.metric_names() + [n for n, _ in summary.skipped]
    names += [n for n in entries if n not in names]
    out = []
    for name in names:
        e = entries.get(name) or {}
        hashes = e.get("weight_hashes") or {}
        timings = e.get("timings") or {}
        out.append(
            {
                "metric": name,
                "group": str(e.get("group", "?")),
                "status": str(e.get("status", "?")),
                "card_version": str(e.get("card_version", "?")),
                "orientation": "higher=better" if e.get("higher_is_better") else "lower=better",
                "computed_by": computed_by(e),
                "weight_hashes": ", ".join(f"{k}: {v}" for k, v in hashes.items()) or "-",
                "timings_s": ", ".join(f"{k} {v}" for k, v in timings.items()) or "-",
                "note": str(e.get("reason") or ""),
            }
        )
    return out


def significance_pairs(summary: RunSummary, alpha: float = ALPHA) -> list[dict[str, object]]:
    """Every unordered metric pair as a dict.

    Keys: ``a``, ``b``, ``difference`` (points, a - b), ``p``, ``p_holm``, ``significant``.

    Example:
        >>> significance_pairs(summary)[0]["a"]  # doctest: +SKIP
        'l2'
    """
    sig = summary.significance
    if sig is None:
        return []
    out = []
    for i, a in enumerate(sig.names):
        for j in range(i + 1, len(sig.names)):
            q = float(sig.p_holm[i, j])
            out.append(
                {
                    "a": a,
                    "b": sig.names[j],
                    "difference": 100 * float(sig.difference[i, j]),
                    "p": float(sig.p_value[i, j]),
                    "p_holm": q,
                    "significant": bool(q < alpha),
                }
            )
    return out


def _p(p: float) -> str:
    return "-" if not math.isfinite(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def significance_rows(pairs: list[dict[str, object]]) -> list[list[str]]:
    """Table cells of :func:`significance_pairs`: a, b, difference, p, Holm p, significant."""
    return [
        [
            r["a"],
            r["b"],
            f"{r['difference']:+.1f}",
            _p(r["p"]),
            _p(r["p_holm"]),
            "yes" if r["significant"] else "no",
        ]
        for r in pairs
    ]


#: Header of the excluded-samples table of every report.
EXCLUDED_COLUMNS = ["Stage", "Task", "Subset", "Samples"]
#: Excluded samples listed by id in a report, per stage.
LISTED_EXCLUDED = 20


def excluded_rows(summary: RunSummary) -> list[list[str]]:
    """Rows of :data:`EXCLUDED_COLUMNS`: samples excluded per stage, task and subset."""
    return [
        [EXCLUSION_STAGES.get(e.stage, e.stage), e.task, e.subset or "(unknown)", str(e.n)]
        for e in summary.excluded
    ]


def excluded_examples(summary: RunSummary) -> list[tuple[str, str, str, str]]:
    """``(stage words, task, sample_id, reason)`` of the first excluded samples of each stage."""
    manifest = summary.manifest
    scored = [n for n, e in (manifest.get("metrics") or {}).items() if e.get("status") == "ok"]
    out = []
    for stage, key in (("opening", "bad_samples"), ("scoring", "failed_samples")):
        entries = [e for e in manifest.get(key) or [] if isinstance(e, dict)]
        out += [
            (
                EXCLUSION_STAGES[stage],
                str(e.get("task") or "task unknown"),
                str(e.get("sample_id", "")),
                str(e.get("reason", "")) + _only_for(e.get("metrics"), scored),
            )
            for e in entries[:LISTED_EXCLUDED]
        ]
    return out


def _only_for(metrics: object, scored: list[str]) -> str:
    """`` (<metric> only)`` when a sample failed for some of the run's metrics, not all (an
    image smaller than one metric accepts); empty otherwise."""
    if not isinstance(metrics, list) or not metrics or set(scored) <= set(metrics):
        return ""
    return f" ({', '.join(map(str, metrics))} only)"


def _md_rows(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(":--" for _ in header) + " |",
        *("| " + " | ".join(r) + " |" for r in esc),
    ]


def markdown_report(
    summary: RunSummary,
    figures: Mapping[str, str] | None = None,
    layers: LayerTable | None = None,
) -> str:
    """The full Markdown report: tables, correlations, significance, figures, provenance.

    Args:
        summary: The run's summary.
        figures: Figure name -> path relative to the report (PNG), linked as images.
        layers: The per-layer 2AFC table, shown after the score tables when given.

    Example:
        >>> figs = {"significance": "figures/significance.png"}
        >>> text = markdown_report(summary, figs)  # doctest: +SKIP
    """
    out = [f"# iqa-bench report: {summary.run_id}", ""]
    if dataset_warning(summary.dataset):
        out += [f"> **WARNING: {dataset_warning(summary.dataset)}.**", ""]
    ds = summary.dataset
    out += [f"Run `{summary.run_id}` on {dataset_line(summary)}.", ""]
    if ds.description:
        out += [f"{ds.description}", ""]
    for task in summary.tasks:
        heading = task_analysis(task).heading
        out += [f"## {heading}", "", markdown_table(score_table(summary, task)), ""]
    if layers is not None:
        out += [layer_section(layers).strip(), ""]
    if summary.mos is not None:
        out += [f"## Correlation with {summary.mos.score_name}", ""]
        out += [corr_markdown(overall_table(summary)), ""]
        out += [f"- {note}" for note in mos_notes(summary)]
        out += ["", "### SRCC per distortion type", "", corr_markdown(type_table(summary)), ""]
    if summary.preference:
        out += ["## Preference correlation (2AFC)", ""]
        rows = [
            [m, f"{p.pearson:.3f}", f"{p.spearman:.3f}", str(p.n)]
            for m, p in summary.preference.items()
        ]
        out += _md_rows(["Metric", "Pearson r", "Spearman rho", "n"], rows)
        out += [
            "",
            "*Correlation of the metric's preference d0 - d1 with the fraction of "
            "judges preferring p1 (h); positive = agrees with the judges.*",
            "",
        ]
    pairs = significance_pairs(summary)
    if pairs:
        sig = summary.significance
        out += ["## Significance of 2AFC differences", ""]
        out += [
            f"Paired sign-flip permutation tests on per-sample 2AFC credits "
            f"({'exact' if sig.exact else f'n_perm={sig.n_perm}'}; {summary.significance_n} "
            f"samples valid for every metric), Holm-corrected over all {len(pairs)} pairs; "
            f"significant at alpha = {ALPHA}.",
            "",
        ]
        rows = significance_rows(pairs)
        out += _md_rows(
            ["Metric A", "Metric B", "A - B (pts)", "p", "p (Holm)", "Significant"], rows
        )
        out.append("")
    if figures:
        out += ["## Figures", ""]
        out += [f"![{FIGURE_ALT.get(k, k)}]({v})" + "\n" for k, v in figures.items()]
    out += ["## Skipped metrics", ""]
    out += [f"- **{m}**: {r}" for m, r in summary.skipped] or ["None."]
    out += ["", "## Excluded samples", "", excluded_sentence(summary)]
    if summary.excluded:
        out += ["", *_md_rows(EXCLUDED_COLUMNS, excluded_rows(summary)), ""]
    for stage, task, sample_id, reason in excluded_examples(summary):
        out.append(f"- {stage}, {task} `{sample_id}`: {reason}")
    out += ["", "## Provenance", ""]
    out += _md_rows(["Item", "Value"], [[k, v] for k, v in provenance(summary)])
    out += ["", "### Metric cards", ""]
    out += _md_rows(
        [header for _, header in METRIC_CARD_COLUMNS],
        [[c[k] for k, _ in METRIC_CARD_COLUMNS] for c in metric_cards(summary)],
    )
    return "\n".join(out) + "\n"


def latex_report(summary: RunSummary, layers: LayerTable | None = None) -> str:
    """A compilable LaTeX document (article, booktabs) holding the paper-style tables (with
    ``layers``, also the per-layer 2AFC table after the score tables).

    Copy the ``table`` floats into a paper; the preamble comment and the provenance list say
    where the numbers come from.

    Example:
        >>> Path("report.tex").write_text(latex_report(summary))  # doctest: +SKIP
    """
    prov = provenance(summary)
    out = [f"% iqa-bench report for run {summary.run_id}"]
    out += [f"% {k}: {v}" for k, v in prov]
    out += [
        *LATEX_PREAMBLE,
        rf"\section*{{iqa-bench report: {latex_escape(summary.run_id)}}}",
    ]
    if dataset_warning(summary.dataset):
        warning = latex_escape(dataset_warning(summary.dataset))
        out.append(rf"\noindent\textbf{{WARNING: {warning}.}}\par")
    out.append(rf"\noindent Run on {latex_escape(dataset_line(summary))}.\par")
    for task in summary.tasks:
        out += ["", latex_table(score_table(summary, task))]
    if layers is not None:
        out += ["", layer_latex(layers)]
    if summary.mos is not None:
        out += ["", corr_latex(overall_table(summary)), "", corr_latex(type_table(summary))]
        notes = mos_notes(summary)
        if notes:
            out += ["", r"\paragraph{Notes.}", r"\begin{itemize}"]
            out += [rf"\item {latex_escape(n)}" for n in notes]
            out.append(r"\end{itemize}")
    if summary.skipped:
        out += ["", r"\paragraph{Skipped metrics.}", r"\begin{itemize}"]
        out += [
            rf"\item \texttt{{{latex_escape(m)}}}: {latex_escape(r)}" for m, r in summary.skipped
        ]
        out.append(r"\end{itemize}")
    out += ["", r"\paragraph{Provenance.}", r"\begin{itemize}"]
    out += [rf"\item {latex_escape(k)}: {latex_escape(v)}" for k, v in prov]
    out.append(rf"\item {latex_escape(excluded_sentence(summary))}")
    out += [
        rf"\item {latex_escape(f'{stage}: {task}, subset {subset}: {n}')}"
        for stage, task, subset, n in excluded_rows(summary)
    ]
    cards = ", ".join(
        f"{c['metric']} v{c['card_version']}"
        + ("" if c["computed_by"] == "native" else f" ({c['computed_by']})")
        for c in metric_cards(summary)
        if c["status"] == "ok"
    )
    out += [rf"\item metric cards: {latex_escape(cards)}", r"\end{itemize}", r"\end{document}"]
    return "\n".join(out) + "\n"

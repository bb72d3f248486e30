"""Turns a loaded run into the numbers every report shows (the report model).

:func:`summarize` computes, per task and metric, the per-subset score with a stratified
percentile-bootstrap CI, the plain mean over subsets (the paper's "Avg") with its CI, the 2AFC
human ceiling, the preference correlation and the Holm-corrected significance matrix. Scores
are percentages: 2AFC accuracy x 100 and JND mAP x 100, like the LPIPS paper's tables. A run
with the ``mos`` task also gets SRCC/KRCC/PLCC against the MOS (:mod:`.mos`).
Renderers (Markdown, LaTeX, CSV, figures, HTML, terminal) only format a :class:`RunSummary`.

Example:
    >>> from iqa_bench.results import load_run
    >>> s = summarize(load_run("runs/synthetic/RUN"), n_boot=200, n_perm=500)  # doctest: +SKIP
    >>> print(terminal_summary(s))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..results import DatasetInfo, Run, load_run
from ..stats import (
    BootstrapResult,
    PreferenceCorrelation,
    SignificanceMatrix,
    bootstrap_jnd,
    bootstrap_statistic,
    bootstrap_twoafc,
    preference_correlation,
    significance_matrix,
    twoafc_credit,
)
from .mos import MOSSummary, mos_terminal_lines, summarize_mos

__all__ = [
    "HUMAN",
    "Cell",
    "MetricRow",
    "RunSummary",
    "TaskSummary",
    "credits_by_sample",
    "dataset_line",
    "dataset_warning",
    "format_cell",
    "summarize",
    "terminal_summary",
]

HUMAN = "human-ceiling"
SYNTHETIC_BANNER = "SYNTHETIC judgments, not human: these scores test the software, not perception"
NO_HUMAN_CEILING = (
    "no human-ceiling row: the judgments are set by a rule (each 0 or 1), not given by people, "
    "so there is no agreement between people to compare with"
)


def dataset_warning(ds: DatasetInfo) -> str | None:
    """The warning every report on ``ds`` shows first: its own notice, the generic synthetic
    banner, or ``None`` for human judgments.

    Example:
        >>> ds = DatasetInfo("synthetic", 1, True, "val", "", "", {})
        >>> dataset_warning(ds) == SYNTHETIC_BANNER
        True
    """
    if ds.notice:
        return ds.notice.rstrip(". ")
    return SYNTHETIC_BANNER if ds.synthetic else None


@dataclass(frozen=True)
class Cell:
    """One score in percent with its CI.

    Attributes:
        score: Point estimate, percent.
        ci_low: Lower CI bound, percent.
        ci_high: Upper CI bound, percent.
        n: Samples behind the estimate.
    """

    score: float
    ci_low: float
    ci_high: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the CI width: what a table prints after ``±``."""
        return (self.ci_high - self.ci_low) / 2.0


@dataclass(frozen=True)
class MetricRow:
    """A metric's (or the human ceiling's) scores on one task.

    Attributes:
        metric: Metric name, or ``HUMAN`` for the ceiling row.
        group: Report group (``"human"`` for the ceiling).
        subsets: Cell per subset, in subset order.
        avg: Plain mean over subsets with its CI.
        n_failed: Samples dropped because the metric returned NaN.
    """

    metric: str
    group: str
    subsets: dict[str, Cell]
    avg: Cell
    n_failed: int = 0


@dataclass(frozen=True)
class TaskSummary:
    """All rows of one task.

    Attributes:
        task: ``"2afc"`` or ``"jnd"``.
        subsets: Subset names in the paper's (judgments) order.
        rows: Metric rows in grouped card order.
        human: The human-ceiling row (2AFC only), else ``None``.
    """

    task: str
    subsets: tuple[str, ...]
    rows: tuple[MetricRow, ...]
    human: MetricRow | None = None

    def row(self, metric: str) -> MetricRow:
        """The row of ``metric``; raises ``ValueError`` naming the metrics present."""
        for r in self.rows:
            if r.metric == metric:
                return r
        raise ValueError(
            f"no {self.task} row for {metric!r}; have {[r.metric for r in self.rows]}."
        )


@dataclass(frozen=True, eq=False)
class RunSummary:
    """The report model of one run.

    Attributes:
        run_id: The run's id.
        dataset: Dataset card info (``dataset.synthetic`` drives the warnings).
        manifest: The run's manifest (provenance for the reports).
        tasks: Task name -> :class:`TaskSummary`, in the run's task order.
        groups: Metric name -> report group, for every metric (ok or skipped).
        preference: Metric -> Pearson/Spearman of ``d0 - d1`` vs ``h`` on 2AFC.
        significance: Paired sign-flip tests of 2AFC credits across ok metrics, Holm-corrected;
            ``None`` with fewer than two metrics.
        significance_n: Samples used for the significance tests (valid for every metric).
        skipped: ``(metric, reason)`` for metrics that did not run.
        failed: Failed samples per task, from the manifest.
        n_boot: Bootstrap resamples.
        n_perm: Sign-flip permutations.
        seed: Random seed.
        confidence: CI coverage, e.g. 0.95.
        mos: Correlations with the MOS when the run has the ``mos`` task, else ``None``.
    """

    run_id: str
    dataset: DatasetInfo
    manifest: dict[str, Any]
    tasks: dict[str, TaskSummary]
    groups: dict[str, str]
    preference: dict[str, PreferenceCorrelation]
    significance: SignificanceMatrix | None
    significance_n: int
    skipped: list[tuple[str, str]]
    failed: dict[str, int]
    n_boot: int
    n_perm: int
    seed: int
    confidence: float = 0.95
    mos: MOSSummary | None = None

    def metric_names(self) -> list[str]:
        """Ok metrics in grouped card order (those of the first task)."""
        first = next(iter(self.tasks.values()), None)
        rows = first.rows if first else self.mos.rows if self.mos else ()
        return [r.metric for r in rows]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (NaN becomes ``None``), as written to ``summary.json``.

        Example:
            >>> json.dumps(summary.to_dict())  # doctest: +SKIP
        """
        sig = self.significance
        return _clean(
            {
                "run_id": self.run_id,
                "dataset": self.dataset.raw,
                "units": "percent (2AFC accuracy x 100, JND mAP x 100); MOS: correlations",
                "ci": {"method": "stratified percentile bootstrap", "confidence": self.confidence},
                "n_boot": self.n_boot,
                "n_perm": self.n_perm,
                "seed": self.seed,
                "tasks": {
                    t: {
                        "subsets": list(ts.subsets),
                        "rows": [_row_dict(r) for r in ts.rows],
                        "human": _row_dict(ts.human) if ts.human else None,
                    }
                    for t, ts in self.tasks.items()
                },
                "preference_correlation": {
                    m: {"pearson": p.pearson, "spearman": p.spearman, "n": p.n}
                    for m, p in self.preference.items()
                },
                "significance": None
                if sig is None
                else {
                    "names": list(sig.names),
                    "n_samples": self.significance_n,
                    "difference_pct": (sig.difference * 100).tolist(),
                    "p_value": sig.p_value.tolist(),
                    "p_holm": sig.p_holm.tolist(),
                    "n_perm": sig.n_perm,
                    "exact": sig.exact,
                },
                "mos": self.mos.to_dict() if self.mos is not None else None,
                "skipped": [{"metric": m, "reason": r} for m, r in self.skipped],
                "failed_samples": self.failed,
                "manifest": self.manifest,
            }
        )


def _row_dict(row: MetricRow) -> dict[str, Any]:
    cells = {**row.subsets, "avg": row.avg}
    return {
        "metric": row.metric,
        "group": row.group,
        "n_failed": row.n_failed,
        "scores": {
            k: {"score": c.score, "ci_low": c.ci_low, "ci_high": c.ci_high, "n": c.n}
            for k, c in cells.items()
        },
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def _row(
    metric: str,
    group: str,
    boot: BootstrapResult,
    n: dict[str, int],
    failed: int,
    order: tuple[str, ...],
) -> MetricRow:
    cells = {
        s: Cell(100 * boot.estimates[s], 100 * lo, 100 * hi, n[s])
        for s, (lo, hi) in boot.intervals.items()
    }
    lo, hi = boot.mean_interval
    avg = Cell(100 * boot.mean, 100 * lo, 100 * hi, sum(n.values()))
    if len(cells) < len(order):
        # A subset lost to failures would make "Avg" a mean over fewer subsets than the
        # other rows, which is not comparable: leave it undefined instead.
        nan = float("nan")
        avg = Cell(nan, nan, nan, avg.n)
    return MetricRow(metric, group, cells, avg, failed)


def _counts(subset: np.ndarray, order: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, int]]:
    present = tuple(s for s in order if (subset == s).any())
    return present, {s: int((subset == s).sum()) for s in present}


def _metric_rows(run: Run, task: str, names: list[str], bootstrap) -> tuple[MetricRow, ...]:
    """One row per metric: ``bootstrap(data, present_subsets)`` on its aligned task data."""
    order = run.subsets(task)
    load = run.twoafc if task == "2afc" else run.jnd
    rows = []
    for name in names:
        data = load(name)
        present, n = _counts(data.subset, order)
        boot = bootstrap(data, present)
        rows.append(_row(name, run.metrics[name].group, boot, n, data.n_failed, order))
    return tuple(rows)


def _task_2afc(run: Run, names: list[str], n_boot: int, seed: int, conf: float) -> TaskSummary:
    kw = {"n_boot": n_boot, "confidence": conf, "seed": seed}
    rows = _metric_rows(
        run,
        "2afc",
        names,
        lambda d, present: bootstrap_twoafc(d.d0, d.d1, d.h, d.subset, subset_order=present, **kw),
    )
    order = run.subsets("2afc")
    if not run.dataset.human_ceiling:
        return TaskSummary("2afc", order, rows)
    _, subset, h = run.judgments("2afc")
    ceiling = h**2 + (1.0 - h) ** 2
    human_boot = bootstrap_statistic(
        {s: ceiling[subset == s] for s in order}, lambda x: x.mean(axis=1), **kw
    )
    human = _row(HUMAN, "human", human_boot, _counts(subset, order)[1], 0, order)
    return TaskSummary("2afc", order, rows, human)


def _task_jnd(run: Run, names: list[str], n_boot: int, seed: int, conf: float) -> TaskSummary:
    kw = {"n_boot": n_boot, "confidence": conf, "seed": seed}
    rows = _metric_rows(
        run,
        "jnd",
        names,
        lambda d, present: bootstrap_jnd(d.d, d.same, d.subset, subset_order=present, **kw),
    )
    return TaskSummary("jnd", run.subsets("jnd"), rows)


def _preference(run: Run, name: str) -> PreferenceCorrelation:
    data = run.twoafc(name)
    # -PSNR of identical patches is -inf: it orders fine but has no Pearson correlation.
    keep = np.isfinite(data.d0) & np.isfinite(data.d1)
    if keep.sum() < 2:
        return PreferenceCorrelation(float("nan"), float("nan"), int(keep.sum()))
    return preference_correlation(data.d0[keep], data.d1[keep], data.h[keep])


def credits_by_sample(run: Run, metric: str) -> dict[str, tuple[float, str, float]]:
    """Per-sample 2AFC credit of ``metric``: sample_id -> (credit, subset, h)."""
    data = run.twoafc(metric)
    credit = twoafc_credit(data.d0, data.d1, data.h)
    return {
        s: (float(c), str(sub), float(h))
        for s, c, sub, h in zip(data.sample_id, credit, data.subset, data.h, strict=True)
    }


def _significance(
    run: Run, names: list[str], n_perm: int, seed: int
) -> tuple[SignificanceMatrix | None, int]:
    if len(names) < 2:
        return None, 0
    per_metric = {name: credits_by_sample(run, name) for name in names}
    # Paired tests need the same samples for every metric: drop any sample one metric failed.
    sid, _, _ = run.judgments("2afc")
    common = [s for s in sid.tolist() if all(s in c for c in per_metric.values())]
    credits = {name: [per_metric[name][s][0] for s in common] for name in names}
    subset = [per_metric[names[0]][s][1] for s in common]
    return significance_matrix(credits, subset, n_perm=n_perm, seed=seed), len(common)


def summarize(
    run: Run | str | Path,
    n_boot: int = 1000,
    n_perm: int = 10000,
    seed: int = 0,
    *,
    confidence: float = 0.95,
) -> RunSummary:
    """Computes scores, CIs, the human ceiling, preference correlations and significance.

    Args:
        run: A run from :func:`iqa_bench.results.load_run`, or a run directory.
        n_boot: Bootstrap resamples per CI (at least 100; 1000+ for published numbers).
        n_perm: Random sign flips per significance test (at least 100).
        seed: Seed for every resampling, so reports are reproducible.
        confidence: CI coverage.

    Returns:
        A :class:`RunSummary`.

    Raises:
        ValueError: When the run has no scorable task or the stats reject the data.

    Example:
        >>> s = summarize(load_run(run_dir), n_boot=200, n_perm=500)  # doctest: +SKIP
        >>> round(s.tasks["2afc"].row("lpips-alex").avg.score, 1)  # doctest: +SKIP
        71.8
    """
    run = run if isinstance(run, Run) else load_run(run)
    names = run.metric_names()
    task_names = [t for t in run.tasks() if t in ("2afc", "jnd")]
    if not task_names and "mos" not in run.tasks():
        raise ValueError(
            f"{run.path}: no 2afc, jnd or mos task in the manifest (tasks: {run.tasks()}); "
            "run the benchmark on a dataset with human judgments."
        )
    builders = {"2afc": _task_2afc, "jnd": _task_jnd}
    tasks = {t: builders[t](run, names, n_boot, seed, confidence) for t in task_names}
    has_2afc = "2afc" in tasks
    sig, sig_n = _significance(run, names, n_perm, seed) if has_2afc else (None, 0)
    failed = dict(Counter(str(entry.get("task", "?")) for entry in run.failed_samples()))
    return RunSummary(
        run_id=run.run_id,
        dataset=run.dataset,
        manifest=run.manifest,
        tasks=tasks,
        groups={n: m.group for n, m in run.metrics.items()},
        preference={n: _preference(run, n) for n in names} if has_2afc else {},
        significance=sig,
        significance_n=sig_n,
        skipped=run.skipped(),
        failed=failed,
        n_boot=n_boot,
        n_perm=n_perm,
        seed=seed,
        confidence=confidence,
        mos=summarize_mos(run, names, n_boot, seed, confidence) if "mos" in run.tasks() else None,
    )


def format_cell(cell: Cell | None) -> str:
    """``"72.3 ± 1.1"`` (score ± CI half-width, percent), or ``"-"`` when undefined."""
    if cell is None or not math.isfinite(cell.score):
        return "-"
    hw = cell.half_width
    return f"{cell.score:5.1f} ± {hw:.1f}" if math.isfinite(hw) else f"{cell.score:5.1f}"


def dataset_line(summary: RunSummary) -> str:
    """One line naming the dataset, its card version, split and whether judgments are human."""
    ds = summary.dataset
    kind = "SYNTHETIC judgments" if ds.synthetic else "human judgments"
    split = f", split {ds.split}" if ds.split else ""
    return f"dataset {ds.name} (card v{ds.card_version}{split}; {kind})"


def terminal_summary(summary: RunSummary) -> str:
    """A short fixed-width table for the terminal: 2AFC avg and JND mAP with CI half-widths.

    Example:
        >>> print(terminal_summary(summarize(run, n_boot=200, n_perm=500)))  # doctest: +SKIP
        run 20261126-131500-synthetic: dataset synthetic (card v1, split val; SYNTHETIC ...)
    """
    lines = [f"run {summary.run_id}: {dataset_line(summary)}"]
    warning = dataset_warning(summary.dataset)
    if warning:
        lines.append(f"!! {warning} !!")
    names = summary.metric_names()
    width = max([len(HUMAN), len("metric"), *(len(n) for n in names)])
    two, jnd = summary.tasks.get("2afc"), summary.tasks.get("jnd")
    if two or jnd:
        header = f"{'metric':<{width}}  {'group':<13}  {'2AFC avg (%)':>12}  {'JND mAP (%)':>12}"
        lines.append(header)
    for name in names if two or jnd else []:
        a = format_cell(two.row(name).avg) if two else "-"
        j = format_cell(jnd.row(name).avg) if jnd else "-"
        lines.append(f"{name:<{width}}  {summary.groups[name]:<13}  {a:>12}  {j:>12}")
    if two and two.human:
        lines.append(
            f"{HUMAN:<{width}}  {'human':<13}  {format_cell(two.human.avg):>12}  {'-':>12}"
        )
    elif two:
        lines.append(f"({NO_HUMAN_CEILING})")
    if summary.mos is not None:
        lines += mos_terminal_lines(summary.mos, summary.groups)
    pct = round(100 * summary.confidence)
    lines.append(f"± = half-width of the {pct}% bootstrap CI (n_boot={summary.n_boot})")
    by_cause: dict[str, list[str]] = {}
    for name, reason in summary.skipped:
        # The terminal gets the cause; the full reason and fix are in every written report.
        by_cause.setdefault(reason.split(":")[0], []).append(name)
    for cause, names_ in by_cause.items():
        lines.append(f"skipped {', '.join(names_)}: {cause} (reason and fix in the report)")
    if summary.failed:
        detail = ", ".join(f"{t}: {n}" for t, n in summary.failed.items())
        lines.append(f"failed samples excluded: {sum(summary.failed.values())} ({detail})")
    return "\n".join(lines)

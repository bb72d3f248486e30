"""Compares two runs metric by metric: 2AFC avg, JND mAP or MOS SRCC.

When both runs scored the same samples with the same judgments (e.g. two versions of the
package, or two devices, on one dataset), each metric's difference gets a paired bootstrap CI;
for 2AFC, whose score is a mean of per-sample credits, it is also tested with a paired sign-flip
permutation test (Holm-adjusted across metrics). JND AP and SRCC are not per-sample means, so
they get the paired CI only. Runs on different samples are bootstrapped independently and only
a CI of the difference is given, never a p-value.

Example:
    >>> print(compare_runs("runs/a", "runs/b", StatsOptions(n_boot=200, n_perm=500)))  # doctest: +SKIP
    2AFC avg (%): A = run-a, B = run-b (paired by sample_id)

Which statistic a task compares, and how, is its :class:`~.analyses.TaskAnalysis`: tasks with a
per-sample ``credit`` get the paired test, the others bootstrap their ``row_statistic``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..results import Run, load_run
from ..stats import (
    StatsOptions,
    bootstrap_difference,
    bootstrap_of,
    holm,
    mean_difference_interval,
    paired_permutation_test,
    unpaired_difference,
)
from .analyses import TASK_ANALYSES, TaskAnalysis, task_analysis
from .summary import Cell, credits_by_sample, dataset_warning, format_cell

__all__ = ["ComparisonRow", "RunComparison", "compare_data", "compare_runs"]


@dataclass(frozen=True)
class ComparisonRow:
    """One metric's statistic (2AFC avg, JND mAP or SRCC) in two runs.

    Attributes:
        metric: Metric name.
        a: Run A's statistic with CI (percent for 2AFC and JND, plain for SRCC).
        b: Run B's statistic with CI.
        difference: ``a - b`` (percentage points for 2AFC and JND; on the common samples when
            paired).
        ci_low: Lower bound of the difference's bootstrap CI.
        ci_high: Upper bound of the difference's bootstrap CI.
        p_value: Paired sign-flip p-value (2AFC only); ``None`` when unpaired or for JND/MOS.
        p_holm: ``p_value`` Holm-adjusted across the compared metrics; ``None`` without p-value.
        paired: Whether samples were paired by ``sample_id``.
        n: Samples in the test (common valid samples when paired, A's plus B's otherwise).
    """

    metric: str
    a: Cell
    b: Cell
    difference: float
    ci_low: float
    ci_high: float
    p_value: float | None
    p_holm: float | None
    paired: bool
    n: int


@dataclass(frozen=True)
class RunComparison:
    """Per-metric comparison of two runs on one task.

    Attributes:
        task: ``2afc``, ``jnd`` or ``mos``.
        statistic: What the values are, e.g. ``"2AFC avg (%)"``.
        run_a: Run A's id.
        run_b: Run B's id.
        paired: Whether both runs hold the same samples with the same judgments.
        notes: Caveats to show (unpaired fallback, different datasets, synthetic data).
        rows: One row per ok metric present in both runs, in A's grouped order.
        only_a: Ok metrics only in A.
        only_b: Ok metrics only in B.
        confidence: CI coverage.
    """

    task: str
    statistic: str
    run_a: str
    run_b: str
    paired: bool
    notes: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    confidence: float


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def _same_samples(a: Run, b: Run, task: str) -> bool:
    sa, _, ha = a.judgments(task)
    sb, _, hb = b.judgments(task)
    if len(sa) != len(sb) or set(sa.tolist()) != set(sb.tolist()):
        return False
    pos = {s: i for i, s in enumerate(sb.tolist())}
    return bool(np.allclose(ha, hb[[pos[s] for s in sa.tolist()]]))


def _headline(run: Run, analysis: TaskAnalysis, name: str, options: StatsOptions) -> Cell:
    """The task's headline statistic of ``name`` over every valid sample, with its CI."""
    data = analysis.load(run, name)
    present = tuple(dict.fromkeys(data.subset.tolist()))
    boot = analysis.score(data, present, options)
    lo, hi = boot.mean_interval
    scale = analysis.scale
    return Cell(scale * boot.mean, scale * lo, scale * hi, len(data.subset))


def _credit_rows(
    a: Run, b: Run, analysis: TaskAnalysis, names: list[str], paired: bool, options: StatsOptions
) -> list[ComparisonRow]:
    """Rows from per-sample credits: paired sign-flip test and bootstrap CI, or unpaired CI."""
    rng = np.random.default_rng(options.seed)
    kw = {"n_boot": options.n_boot, "confidence": options.confidence, "rng": rng}
    scale, rows = analysis.scale, []
    for name in names:
        ca, cb = (credits_by_sample(run, name, analysis.name) for run in (a, b))
        avg_a, avg_b = (_headline(run, analysis, name, options) for run in (a, b))
        if paired:
            ids = [s for s in ca if s in cb]  # samples that failed in either run are dropped
            subset = np.array([ca[s][1] for s in ids])
            xa, xb = np.array([ca[s][0] for s in ids]), np.array([cb[s][0] for s in ids])
            test = paired_permutation_test(xa, xb, subset, n_perm=options.n_perm, seed=options.seed)
            lo, hi = mean_difference_interval(xa, xb, subset, paired=True, **kw)
            est, p, n = scale * test.difference, test.p_value, len(ids)
        else:
            va, vb = (np.array([v[0] for v in c.values()]) for c in (ca, cb))
            sa, sb = (np.array([v[1] for v in c.values()]) for c in (ca, cb))
            lo, hi = mean_difference_interval(va, vb, sa, sb, paired=False, **kw)
            est, p, n = avg_a.score - avg_b.score, None, len(va) + len(vb)
        row = ComparisonRow(name, avg_a, avg_b, est, scale * lo, scale * hi, p, None, paired, n)
        rows.append(row)
    if paired and rows:
        adjusted = holm([r.p_value for r in rows])
        rows = [
            ComparisonRow(**{**r.__dict__, "p_holm": float(q)})
            for r, q in zip(rows, adjusted, strict=True)
        ]
    return rows


def _predictions(
    run: Run, name: str, analysis: TaskAnalysis
) -> dict[str, tuple[float, str, float]]:
    """sample_id -> (prediction, subset, judgment), oriented for the analysis's statistic."""
    data = analysis.load(run, name)
    pred, judg = analysis.compared(data)
    return {
        str(s): (float(p), str(sub), float(j))
        for s, p, sub, j in zip(data.sample_id, pred, data.subset, judg, strict=True)
    }


def _columns(
    values: dict[str, tuple[float, str, float]], ids: list[str], stratified: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Predictions, strata (None when the statistic is over all samples, e.g. SRCC), judgments."""
    pred = np.array([values[s][0] for s in ids])
    judg = np.array([values[s][2] for s in ids])
    sub = np.array([values[s][1] for s in ids]) if stratified else None
    return pred, sub, judg


def _statistic_rows(
    a: Run, b: Run, analysis: TaskAnalysis, names: list[str], paired: bool, options: StatsOptions
) -> list[ComparisonRow]:
    """Rows for statistics that are not per-sample means (JND AP, SRCC): bootstrap CIs only.

    JND AP is averaged over subsets as in the paper; SRCC is over all images, as reported.
    """
    statistic, scale, strat = analysis.row_statistic, analysis.scale, analysis.stratified
    kw = {"n_boot": options.n_boot, "confidence": options.confidence}
    rows = []
    for name in names:
        pa, pb = _predictions(a, name, analysis), _predictions(b, name, analysis)
        boots = []
        for k, values in enumerate((pa, pb)):
            pred, sub, judg = _columns(values, list(values), strat)
            boots.append(bootstrap_of(statistic, pred, judg, sub, seed=options.seed + k, **kw))
        cells = [
            Cell(scale * r.mean, scale * r.mean_interval[0], scale * r.mean_interval[1], len(p))
            for r, p in ((boots[0], pa), (boots[1], pb))
        ]
        if paired:
            ids = [s for s in pa if s in pb]
            pred_a, sub, judg = _columns(pa, ids, strat)
            pred_b = _columns(pb, ids, strat)[0]
            diff = bootstrap_difference(
                statistic, pred_a, pred_b, judg, sub, seed=options.seed, **kw
            )
            est, (lo, hi), n = diff.mean, diff.mean_interval, len(ids)
        else:
            est, (lo, hi) = unpaired_difference(boots[0], boots[1], options.confidence)
            n = len(pa) + len(pb)
        rows.append(
            ComparisonRow(name, *cells, scale * est, scale * lo, scale * hi, None, None, paired, n)
        )
    return rows


def _options(
    options: StatsOptions | None,
    n_boot: int | None,
    n_perm: int | None,
    seed: int | None,
    confidence: float | None,
) -> StatsOptions:
    return (options or StatsOptions()).with_overrides(n_boot, n_perm, seed, confidence)


def _notes(a: Run, b: Run, task: str, paired: bool) -> tuple[str, ...]:
    notes = []
    if a.dataset.name != b.dataset.name:
        notes.append(f"different datasets ({a.dataset.name} vs {b.dataset.name}).")
    warnings = dict.fromkeys(w for w in map(dataset_warning, (a.dataset, b.dataset)) if w)
    notes += [w + "." for w in warnings]
    if not paired:
        notes.append(
            f"the runs' {task} samples do not match (different sample_ids or judgments), so no "
            "paired comparison is possible; showing an unpaired bootstrap CI of the difference."
        )
    return tuple(notes)


def compare_data(
    run_a: Run | str | Path,
    run_b: Run | str | Path,
    options: StatsOptions | None = None,
    *,
    task: str = "2afc",
    n_boot: int | None = None,
    n_perm: int | None = None,
    seed: int | None = None,
    confidence: float | None = None,
) -> RunComparison:
    """Compares one task's headline statistic for every metric that ran in both runs.

    Args:
        run_a: A :class:`~iqa_bench.results.Run` or a run directory.
        run_b: The run to compare against.
        options: Resampling settings; defaults to ``StatsOptions()``.
        task: A task whose analysis is comparable: ``2afc`` (2AFC avg), ``jnd`` (JND mAP) or
            ``mos`` (SRCC over all images).
        n_boot: Overrides ``options.n_boot`` (bootstrap resamples for the CIs) when given.
        n_perm: Overrides ``options.n_perm`` (sign flips for paired tests) when given.
        seed: Overrides ``options.seed`` when given.
        confidence: Overrides ``options.confidence`` (CI coverage) when given.

    Returns:
        A :class:`RunComparison`.

    Raises:
        ValueError: An unknown or not comparable task, or a run without it.

    Example:
        >>> cmp = compare_data("runs/a", "runs/b", StatsOptions(n_boot=200))  # doctest: +SKIP
        >>> cmp.paired, cmp.rows[0].metric  # doctest: +SKIP
        (True, 'l2')
    """
    options = _options(options, n_boot, n_perm, seed, confidence)
    analysis = task_analysis(task)
    if not analysis.comparable:
        raise InputError(f"task: {task!r} has no statistic to compare between runs.")
    a, b = _as_run(run_a), _as_run(run_b)
    for run in (a, b):
        if task not in run.tasks():
            raise InputError(
                f"run {run.path} has no {task} task (it has {', '.join(run.tasks()) or 'none'}); "
                "compare a task both runs scored."
            )
    names_a, names_b = a.metric_names(), b.metric_names()
    common = [n for n in names_a if n in names_b]
    paired = _same_samples(a, b, task)
    build = _credit_rows if analysis.credit is not None else _statistic_rows
    rows = build(a, b, analysis, common, paired, options)
    return RunComparison(
        task=task,
        statistic=analysis.statistic,
        run_a=a.run_id,
        run_b=b.run_id,
        paired=paired,
        notes=_notes(a, b, task, paired),
        rows=tuple(rows),
        only_a=tuple(n for n in names_a if n not in names_b),
        only_b=tuple(n for n in names_b if n not in names_a),
        confidence=options.confidence,
    )


def _format(cell: Cell, digits: int) -> str:
    if digits == 1:
        return format_cell(cell)
    if not np.isfinite(cell.score):
        return "-"
    return f"{cell.score:.{digits}f} ± {cell.half_width:.{digits}f}"


def _comparison_text(cmp: RunComparison) -> list[str]:
    analysis = task_analysis(cmp.task)
    digits = analysis.digits
    how = "paired by sample_id" if cmp.paired else "UNPAIRED: the runs' samples differ"
    lines = [f"{cmp.statistic}: A = {cmp.run_a}, B = {cmp.run_b} ({how})"]
    lines += [f"note: {note}" for note in cmp.notes]
    width = max([len("metric"), *(len(r.metric) for r in cmp.rows)])
    cell_w = max(12, 11 + digits)
    ci_head = f"{round(100 * cmp.confidence)}% CI of A-B"
    has_p = any(r.p_value is not None for r in cmp.rows)
    tail = "p (paired perm.)  p (Holm)" if has_p else "CI excludes 0"
    lines.append(
        f"{'metric':<{width}}  {'A':>{cell_w}}  {'B':>{cell_w}}  {'A-B':>6}  {ci_head:>16}  {tail}"
    )
    for r in cmp.rows:
        ci = f"[{r.ci_low:+.{digits}f}, {r.ci_high:+.{digits}f}]"
        if r.p_value is not None:
            test = f"{r.p_value:<16.4f}  {r.p_holm:.4f}"
        else:
            test = "yes" if r.ci_low > 0 or r.ci_high < 0 else "no"
        lines.append(
            f"{r.metric:<{width}}  {_format(r.a, digits):>{cell_w}}  "
            f"{_format(r.b, digits):>{cell_w}}  {r.difference:+6.{digits}f}  {ci:>16}  {test}"
        )
    if not cmp.rows:
        lines.append("(no metric ran in both runs)")
    if cmp.only_a:
        lines.append(f"only in A: {', '.join(cmp.only_a)}")
    if cmp.only_b:
        lines.append(f"only in B: {', '.join(cmp.only_b)}")
    lines.append(f"A-B in {analysis.unit}; ± = CI half-width of each run's value.")
    return lines


def compare_runs(
    run_a: Run | str | Path,
    run_b: Run | str | Path,
    options: StatsOptions | None = None,
    *,
    task: str | None = None,
    n_boot: int | None = None,
    n_perm: int | None = None,
    seed: int | None = None,
    confidence: float | None = None,
) -> str:
    """Fixed-width text comparing two runs (see :func:`compare_data`).

    Args:
        options: Resampling settings; ``n_boot``, ``n_perm``, ``seed`` and ``confidence``
            override them when given.
        task: One task to compare; None compares every comparable task both runs scored.

    Raises:
        ValueError: When the runs share no task.

    Example:
        >>> print(compare_runs("runs/a", "runs/b", StatsOptions(n_boot=200)))  # doctest: +SKIP
        2AFC avg (%): A = run-a, B = run-b (paired by sample_id)
    """
    options = _options(options, n_boot, n_perm, seed, confidence)
    a, b = _as_run(run_a), _as_run(run_b)
    if task is None:
        tasks = [
            t
            for t, analysis in TASK_ANALYSES.items()
            if analysis.comparable and t in a.tasks() and t in b.tasks()
        ]
        if not tasks:
            raise InputError(
                f"runs {a.path} ({', '.join(a.tasks())}) and {b.path} ({', '.join(b.tasks())}) "
                "share no task to compare."
            )
    else:
        tasks = [task]
    sections = []
    for t in tasks:
        cmp = compare_data(a, b, options, task=t)
        sections.append("\n".join(_comparison_text(cmp)))
    return "\n\n".join(sections)

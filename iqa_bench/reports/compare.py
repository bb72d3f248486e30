"""Compares the 2AFC averages of two runs, metric by metric.

When both runs scored the same 2AFC samples with the same judgments (e.g. two versions of the
package, or two devices, on one dataset), each metric's difference is tested with a paired
sign-flip permutation test on per-sample credits and gets a paired bootstrap CI. Otherwise the
runs are bootstrapped independently and only a CI of the difference is given, never a p-value.

Example:
    >>> print(compare_runs("runs/a", "runs/b", n_boot=200, n_perm=500))  # doctest: +SKIP
    2AFC avg (%): A = run-a, B = run-b (paired by sample_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..results import Run, load_run
from ..stats import bootstrap_twoafc, holm, paired_permutation_test
from .summary import SYNTHETIC_BANNER, Cell, credits_by_sample, format_cell

__all__ = ["ComparisonRow", "RunComparison", "compare_data", "compare_runs"]


@dataclass(frozen=True)
class ComparisonRow:
    """2AFC avg of one metric in two runs.

    Attributes:
        metric: Metric name.
        a: Run A's 2AFC avg with CI (percent).
        b: Run B's 2AFC avg with CI (percent).
        difference: ``a - b`` in percentage points (on the common samples when paired).
        ci_low: Lower bound of the difference's bootstrap CI (points).
        ci_high: Upper bound of the difference's bootstrap CI (points).
        p_value: Paired sign-flip p-value; ``None`` when unpaired.
        p_holm: ``p_value`` Holm-adjusted across the compared metrics; ``None`` when unpaired.
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
    """Per-metric comparison of two runs' 2AFC averages.

    Attributes:
        run_a: Run A's id.
        run_b: Run B's id.
        paired: Whether both runs hold the same samples with the same judgments.
        notes: Caveats to show (unpaired fallback, different datasets, synthetic data).
        rows: One row per ok metric present in both runs, in A's grouped order.
        only_a: Ok metrics only in A.
        only_b: Ok metrics only in B.
        confidence: CI coverage.
    """

    run_a: str
    run_b: str
    paired: bool
    notes: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    confidence: float


def _stratified_means(
    credit: np.ndarray, subset: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of the mean-over-subsets score, resampling within subsets."""
    present = list(dict.fromkeys(subset.tolist()))
    reps = np.zeros(n_boot)
    for s in present:
        values = credit[subset == s]
        idx = rng.integers(0, values.size, size=(n_boot, values.size))
        reps += values[idx].mean(axis=1) / len(present)
    return reps


def _same_samples(a: Run, b: Run) -> bool:
    sa, _, ha = a.judgments("2afc")
    sb, _, hb = b.judgments("2afc")
    if len(sa) != len(sb) or set(sa.tolist()) != set(sb.tolist()):
        return False
    pos = {s: i for i, s in enumerate(sb.tolist())}
    return bool(np.allclose(ha, hb[[pos[s] for s in sa.tolist()]]))


def _avg(run: Run, name: str, n_boot: int, seed: int, confidence: float) -> Cell:
    data = run.twoafc(name)
    boot = bootstrap_twoafc(
        data.d0, data.d1, data.h, data.subset, n_boot=n_boot, confidence=confidence, seed=seed
    )
    lo, hi = boot.mean_interval
    return Cell(100 * boot.mean, 100 * lo, 100 * hi, len(data.h))


def compare_data(
    run_a: Run | str | Path,
    run_b: Run | str | Path,
    *,
    n_boot: int = 1000,
    n_perm: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> RunComparison:
    """Compares the 2AFC avg of every metric that ran in both runs.

    Args:
        run_a: A :class:`~iqa_bench.results.Run` or a run directory.
        run_b: The run to compare against.
        n_boot: Bootstrap resamples for the CIs (at least 100).
        n_perm: Sign flips for the paired tests (at least 100).
        seed: Random seed.
        confidence: CI coverage.

    Returns:
        A :class:`RunComparison`.

    Raises:
        ValueError: When a run has no 2AFC task.

    Example:
        >>> cmp = compare_data("runs/a", "runs/b", n_boot=200, n_perm=500)  # doctest: +SKIP
        >>> cmp.paired, cmp.rows[0].metric  # doctest: +SKIP
        (True, 'l2')
    """
    a = run_a if isinstance(run_a, Run) else load_run(run_a)
    b = run_b if isinstance(run_b, Run) else load_run(run_b)
    for run in (a, b):
        if "2afc" not in run.tasks():
            raise ValueError(f"run {run.path} has no 2afc task; compare needs 2AFC scores.")
    names_a, names_b = a.metric_names(), b.metric_names()
    common = [n for n in names_a if n in names_b]
    paired = _same_samples(a, b)
    notes = []
    if a.dataset.name != b.dataset.name:
        notes.append(f"different datasets ({a.dataset.name} vs {b.dataset.name}).")
    if a.dataset.synthetic or b.dataset.synthetic:
        notes.append(SYNTHETIC_BANNER + ".")
    if not paired:
        notes.append(
            "the runs' 2AFC samples do not match (different sample_ids or judgments), so no "
            "paired test is possible; showing an unpaired bootstrap CI of the difference only."
        )
    rng = np.random.default_rng(seed)
    alpha = (1.0 - confidence) / 2.0
    rows = []
    for name in common:
        ca, cb = credits_by_sample(a, name), credits_by_sample(b, name)
        avg_a = _avg(a, name, n_boot, seed, confidence)
        avg_b = _avg(b, name, n_boot, seed, confidence)
        if paired:
            ids = [s for s in ca if s in cb]  # samples that failed in either run are dropped
            subset = np.array([ca[s][1] for s in ids])
            xa, xb = np.array([ca[s][0] for s in ids]), np.array([cb[s][0] for s in ids])
            test = paired_permutation_test(xa, xb, subset, n_perm=n_perm, seed=seed)
            reps = _stratified_means(xa - xb, subset, n_boot, rng)
            est, p, n = 100 * test.difference, test.p_value, len(ids)
        else:
            va, vb = (np.array([v[0] for v in c.values()]) for c in (ca, cb))
            sa, sb = (np.array([v[1] for v in c.values()]) for c in (ca, cb))
            reps = _stratified_means(va, sa, n_boot, rng) - _stratified_means(vb, sb, n_boot, rng)
            est, p, n = avg_a.score - avg_b.score, None, len(va) + len(vb)
        lo, hi = np.quantile(reps, [alpha, 1.0 - alpha]) * 100
        rows.append(
            ComparisonRow(name, avg_a, avg_b, est, float(lo), float(hi), p, None, paired, n)
        )
    if paired and rows:
        adjusted = holm([r.p_value for r in rows])
        rows = [
            ComparisonRow(**{**r.__dict__, "p_holm": float(q)})
            for r, q in zip(rows, adjusted, strict=True)
        ]
    return RunComparison(
        run_a=a.run_id,
        run_b=b.run_id,
        paired=paired,
        notes=tuple(notes),
        rows=tuple(rows),
        only_a=tuple(n for n in names_a if n not in names_b),
        only_b=tuple(n for n in names_b if n not in names_a),
        confidence=confidence,
    )


def compare_runs(
    run_a: Run | str | Path,
    run_b: Run | str | Path,
    *,
    n_boot: int = 1000,
    n_perm: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> str:
    """Fixed-width text comparing two runs' 2AFC averages (see :func:`compare_data`).

    Example:
        >>> print(compare_runs("runs/a", "runs/b", n_boot=200, n_perm=500))  # doctest: +SKIP
        2AFC avg (%): A = run-a, B = run-b (paired by sample_id)
    """
    cmp = compare_data(run_a, run_b, n_boot=n_boot, n_perm=n_perm, seed=seed, confidence=confidence)
    how = "paired by sample_id" if cmp.paired else "UNPAIRED: the runs' samples differ"
    lines = [f"2AFC avg (%): A = {cmp.run_a}, B = {cmp.run_b} ({how})"]
    lines += [f"note: {note}" for note in cmp.notes]
    width = max([len("metric"), *(len(r.metric) for r in cmp.rows)])
    ci_head = f"{round(100 * confidence)}% CI of A-B"
    tail = "p (paired perm.)  p (Holm)" if cmp.paired else "CI excludes 0"
    lines.append(f"{'metric':<{width}}  {'A':>12}  {'B':>12}  {'A-B':>6}  {ci_head:>16}  {tail}")
    for r in cmp.rows:
        ci = f"[{r.ci_low:+.1f}, {r.ci_high:+.1f}]"
        if r.p_value is not None:
            test = f"{r.p_value:<16.4f}  {r.p_holm:.4f}"
        else:
            test = "yes" if r.ci_low > 0 or r.ci_high < 0 else "no"
        lines.append(
            f"{r.metric:<{width}}  {format_cell(r.a):>12}  {format_cell(r.b):>12}  "
            f"{r.difference:+6.1f}  {ci:>16}  {test}"
        )
    if not cmp.rows:
        lines.append("(no metric ran in both runs)")
    if cmp.only_a:
        lines.append(f"only in A: {', '.join(cmp.only_a)}")
    if cmp.only_b:
        lines.append(f"only in B: {', '.join(cmp.only_b)}")
    lines.append("A-B in percentage points; ± = CI half-width of each run's 2AFC avg.")
    return "\n".join(lines)

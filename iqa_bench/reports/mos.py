"""The MOS part of the report model: SRCC, KRCC and PLCC of every metric against MOS/DMOS.

For each metric, :func:`summarize_mos` correlates ``quality_like = -distance`` (similarities were
already negated into distances by :mod:`iqa_bench.results`) with the scores, oriented by the run's
``dataset.mos_higher_is_better`` (DMOS is negated; never ``abs()``), over all images with
:func:`iqa_bench.stats.correlations` (5-parameter logistic before PLCC, refitted in every bootstrap
resample) and per distortion type with :func:`iqa_bench.stats.subset_correlations` (the global
logistic map held fixed). Samples whose distance is not finite (``-PSNR`` of identical images) are
left out and counted. Renderers live in :mod:`.mos_tables` and :mod:`.mos_figures`.

Example:
    >>> mos = summarize_mos(load_run(run_dir), ["l2", "ssim"], StatsOptions(n_boot=200))  # doctest: +SKIP
    >>> mos.row("ssim").srcc.value  # doctest: +SKIP
    0.81
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..results import Run
from ..stats import (
    CorrelationResult,
    Estimate,
    LogisticFit,
    StatsOptions,
    SubsetCorrelation,
    correlations,
    subset_correlations,
)

__all__ = [
    "LOGISTIC",
    "MOS_TASKS",
    "MOSMetricRow",
    "MOSSummary",
    "mos_terminal_lines",
    "mos_tidy_rows",
    "summarize_mos",
]

#: The logistic map fitted before PLCC (VQEG's 5-parameter form).
LOGISTIC = "5pl"
#: ``task`` values of the MOS rows of ``results.csv``, one per statistic.
MOS_TASKS = {"srcc": "mos-srcc", "krcc": "mos-krcc", "plcc": "mos-plcc"}
#: ``subset`` value of the rows over all images (not a mean over types, unlike 2AFC's ``avg``).
ALL = "all"
_NAN = Estimate(math.nan, math.nan, math.nan)


@dataclass(frozen=True, eq=False)
class MOSMetricRow:
    """One metric's agreement with the MOS.

    Attributes:
        metric: Metric name.
        group: Report group.
        srcc: Spearman correlation over all images, with CI.
        krcc: Kendall tau-b over all images, with CI.
        plcc: Signed Pearson correlation after the logistic fit, with CI.
        fit: The logistic fitted on all images; ``fit.converged`` False means PLCC is the raw
            Pearson correlation and ``fit.message`` says why.
        fit_failures: Bootstrap resamples whose refit failed (their PLCC is the raw one).
        per_type: Distortion type -> SRCC/KRCC/PLCC with CIs (see ``subset_correlations``).
        n: Images behind the numbers.
        n_failed: Images the metric failed on (NaN score), excluded.
        n_nonfinite: Images with an infinite distance (e.g. PSNR of identical images), excluded.
        score: The metric's scores as it outputs them (similarities stay similarities), for plots.
        mos: The scores (MOS/DMOS as published) of the same images.
        subset: Distortion type of each image.
        higher_is_better: The metric's orientation (True for similarities).
    """

    metric: str
    group: str
    srcc: Estimate
    krcc: Estimate
    plcc: Estimate
    fit: LogisticFit
    fit_failures: int
    per_type: dict[str, SubsetCorrelation]
    n: int
    n_failed: int
    n_nonfinite: int
    score: np.ndarray = field(repr=False)
    mos: np.ndarray = field(repr=False)
    subset: np.ndarray = field(repr=False)
    higher_is_better: bool = False


@dataclass(frozen=True, eq=False)
class MOSSummary:
    """Every MOS number of a run.

    Attributes:
        subsets: Distortion types in the dataset's order.
        rows: One row per metric, in grouped card order.
        higher_is_better_mos: True for MOS (higher = better), False for DMOS.
        mos_min: Smallest score in the judgments.
        mos_max: Largest score in the judgments.
        n: Images in the judgments.
        resize: ``None`` for native resolution, else the side images were resized to.
    """

    subsets: tuple[str, ...]
    rows: tuple[MOSMetricRow, ...]
    higher_is_better_mos: bool
    mos_min: float
    mos_max: float
    n: int
    resize: int | None = None

    def row(self, metric: str) -> MOSMetricRow:
        """The row of ``metric``; raises ``ValueError`` naming the metrics present."""
        for r in self.rows:
            if r.metric == metric:
                return r
        raise ValueError(f"no MOS row for {metric!r}; have {[r.metric for r in self.rows]}.")

    @property
    def score_name(self) -> str:
        """``"MOS"`` or ``"DMOS"``."""
        return "MOS" if self.higher_is_better_mos else "DMOS"

    @property
    def direction(self) -> str:
        """E.g. ``"DMOS: higher = worse quality"``."""
        worse = "better" if self.higher_is_better_mos else "worse"
        return f"{self.score_name}: higher = {worse} quality"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (NaN kept; the caller cleans them)."""

        def est(e: Estimate) -> dict[str, float]:
            return {"value": e.value, "ci_low": e.low, "ci_high": e.high}

        return {
            "score": self.score_name,
            "higher_is_better": self.higher_is_better_mos,
            "observed_range": [self.mos_min, self.mos_max],
            "n": self.n,
            "resize": self.resize,
            "logistic": LOGISTIC,
            "subsets": list(self.subsets),
            "rows": [
                {
                    "metric": r.metric,
                    "group": r.group,
                    "n": r.n,
                    "n_failed": r.n_failed,
                    "n_nonfinite": r.n_nonfinite,
                    "srcc": est(r.srcc),
                    "krcc": est(r.krcc),
                    "plcc": est(r.plcc),
                    "fit": {
                        "kind": r.fit.kind,
                        "converged": r.fit.converged,
                        "message": r.fit.message,
                        "params": list(r.fit.params),
                    },
                    "fit_failures_in_resamples": r.fit_failures,
                    "per_type": {
                        t: {"n": c.n, "srcc": est(c.srcc), "krcc": est(c.krcc), "plcc": est(c.plcc)}
                        for t, c in r.per_type.items()
                    },
                }
                for r in self.rows
            ],
        }


def _row(run: Run, name: str, order: tuple[str, ...], options: StatsOptions) -> MOSMetricRow:
    data = run.mos(name)
    info = run.metrics[name]
    finite = np.isfinite(data.d)
    q, y, sub = -data.d[finite], data.mos[finite], data.subset[finite]
    hib = data.higher_is_better_mos
    n_boot, seed, conf = options.n_boot, options.seed, options.confidence
    if q.size >= 3:
        res: CorrelationResult = correlations(
            q,
            y,
            higher_is_better_mos=hib,
            logistic=LOGISTIC,
            n_boot=n_boot,
            confidence=conf,
            seed=seed,
        )
        fit, estimates, failures = res.fit, (res.srcc, res.krcc, res.plcc), res.fit_failures
        per_type = subset_correlations(
            q,
            y,
            sub,
            higher_is_better_mos=hib,
            fit=fit,
            subset_order=order,
            n_boot=n_boot,
            confidence=conf,
            seed=seed,
        )
    else:
        fit = LogisticFit(LOGISTIC, (), False, f"only {q.size} image(s) with a finite score")
        estimates, failures = (_NAN, _NAN, _NAN), 0
        per_type = {t: SubsetCorrelation(_NAN, _NAN, _NAN, int((sub == t).sum())) for t in order}
    score = -data.d[finite] if info.higher_is_better else data.d[finite]
    return MOSMetricRow(
        metric=name,
        group=info.group,
        srcc=estimates[0],
        krcc=estimates[1],
        plcc=estimates[2],
        fit=fit,
        fit_failures=failures,
        per_type=per_type,
        n=int(q.size),
        n_failed=data.n_failed,
        n_nonfinite=int((~finite).sum()),
        score=score,
        mos=y,
        subset=sub,
        higher_is_better=info.higher_is_better,
    )


def summarize_mos(run: Run, names: list[str], options: StatsOptions | None = None) -> MOSSummary:
    """Correlations of every metric with the run's MOS judgments, overall and per type.

    Args:
        run: A run whose manifest lists the ``mos`` task.
        names: Metrics (status ok) in report order.
        options: Resampling settings (``n_boot``, ``seed``, ``confidence``); defaults to
            ``StatsOptions()``.

    Raises:
        ValueError: When the manifest lacks the score direction, or the stats reject the data.

    Example:
        >>> summarize_mos(run, run.metric_names(), StatsOptions(n_boot=200)).direction  # doctest: +SKIP
        'MOS: higher = better quality'
    """
    _, _, mos = run.judgments("mos")
    order = run.subsets("mos")
    resize = run.manifest.get("resize")
    return MOSSummary(
        subsets=order,
        rows=tuple(_row(run, name, order, options or StatsOptions()) for name in names),
        higher_is_better_mos=run.mos_higher_is_better(),
        mos_min=float(mos.min()),
        mos_max=float(mos.max()),
        n=int(mos.size),
        resize=int(resize) if isinstance(resize, int) else None,
    )


def mos_tidy_rows(mos: MOSSummary, dataset: str) -> list[tuple[Any, ...]]:
    """Rows ``(dataset, task, metric, group, subset, score, ci_low, ci_high, n)`` of results.csv.

    One row per metric x statistic (task ``mos-srcc``, ``mos-krcc``, ``mos-plcc``) x subset, the
    subset ``all`` (every image) first, then the distortion types. Scores are correlations. Rows
    are unique by (dataset, task, metric, subset): a dataset without types (its one type is
    ``all``) has only the ``all`` rows, and a type named ``all`` beside others is written
    ``all (type)``.

    Example:
        >>> mos_tidy_rows(summary.mos, "tid2013")[0][:5]  # doctest: +SKIP
        ('tid2013', 'mos-srcc', 'l2', 'classical', 'all')
    """
    # Without distortion types the adapters label every image ``all``: that one "type" is the
    # overall set again (with the per-type interval's fixed map), a second row keyed ``all``.
    untyped = tuple(mos.subsets) == (ALL,)
    out = []
    for stat, task in MOS_TASKS.items():
        for r in mos.rows:
            cells = [(ALL, getattr(r, stat), r.n)]
            if not untyped:
                cells += [(_type_key(t), getattr(c, stat), c.n) for t, c in r.per_type.items()]
            for subset, e, n in cells:
                out.append((dataset, task, r.metric, r.group, subset, e.value, e.low, e.high, n))
    return out


def _type_key(name: str) -> str:
    """The ``subset`` of a type's rows, kept apart from the overall rows' ``all``."""
    return f"{name} (type)" if name == ALL else name


def _fmt(e: Estimate) -> str:
    if not math.isfinite(e.value):
        return "-"
    half = (e.high - e.low) / 2
    return f"{e.value:6.3f} ± {half:.3f}" if math.isfinite(half) else f"{e.value:6.3f}"


def mos_terminal_lines(mos: MOSSummary, groups: dict[str, str]) -> list[str]:
    """Fixed-width lines for the terminal: SRCC, KRCC and PLCC per metric with CI half-widths."""
    width = max([len("metric"), *(len(r.metric) for r in mos.rows)])
    lines = [
        f"{mos.direction}; {mos.n} images; PLCC after a {LOGISTIC} logistic fit",
        f"{'metric':<{width}}  {'group':<13}  {'SRCC':>13}  {'KRCC':>13}  {'PLCC':>13}",
    ]
    for r in mos.rows:
        note = "" if r.fit.converged else "  (fit failed: raw PLCC)"
        lines.append(
            f"{r.metric:<{width}}  {groups.get(r.metric, r.group):<13}  {_fmt(r.srcc):>13}  "
            f"{_fmt(r.krcc):>13}  {_fmt(r.plcc):>13}{note}"
        )
    return lines

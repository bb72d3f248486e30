"""What reports compute for each task: one :class:`TaskAnalysis` per :class:`~iqa_bench.tasks.TaskSpec`.

:mod:`iqa_bench.tasks` holds a task's data layout (image fields, compared pairs, stored fields)
and imports nothing, so the runner can read it. This module adds, keyed by the same spec, what
the analysis layers need: the aligned-data loader, the headline statistic with its stratified
bootstrap, the optional human ceiling, the per-sample credit behind paired tests, and how
``compare`` bootstraps a difference. The summary, the tables, the HTML page and ``compare``
dispatch through :func:`task_analysis` instead of branching on task names, so a new task is one
:func:`register_task_analysis` call (its spec and its analysis) plus, if it wants more than the
per-subset score table, its own report section.

Example:
    >>> task_analysis("jnd").statistic
    'JND mAP (%)'
    >>> [t for t, a in TASK_ANALYSES.items() if a.score is not None]
    ['2afc', 'jnd']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..results import JNDData, MOSData, Run, TwoAFCData
from ..stats import (
    BootstrapResult,
    PreferenceCorrelation,
    StatsOptions,
    bootstrap_jnd,
    bootstrap_statistic,
    bootstrap_twoafc,
    preference_correlation,
    twoafc_credit,
)
from ..tasks import TASKS, TaskSpec, register_task

__all__ = [
    "TASK_ANALYSES",
    "TaskAnalysis",
    "register_task_analysis",
    "task_analysis",
]

#: Loader: ``(run, metric) -> data`` with at least ``sample_id``, ``subset`` and ``n_failed``.
Loader = Callable[[Run, str], Any]
#: Headline score: ``(data, subsets present, options) -> BootstrapResult`` (fractions, per
#: subset and their plain mean).
Score = Callable[[Any, tuple[str, ...], StatsOptions], BootstrapResult]


@dataclass(frozen=True)
class TaskAnalysis:
    """How reports analyse one task.

    Attributes:
        spec: The task's layout; its ``name`` keys every report structure.
        heading: Section heading in the reports, e.g. ``"2AFC"``.
        title: What the score table shows, e.g. ``"2AFC accuracy (%)"``.
        statistic: The headline statistic's label, e.g. ``"2AFC avg (%)"`` (terminal column,
            ``compare``).
        load: The aligned-data loader.
        score: The headline statistic per subset with its stratified bootstrap; ``None`` for a
            task with its own report section instead of the per-subset table (MOS).
        human: ``(run, options) -> BootstrapResult`` of the human ceiling per subset, or None.
        human_note: The table caption's sentence about the human row.
        credit: Per-sample credit whose mean over subsets is the headline statistic; enables
            paired sign-flip tests (significance matrix, ``compare`` p-values).
        preference: Per-metric correlation of the metric's preference with the judgments.
        compared: ``data -> (prediction, judgment)`` oriented for ``row_statistic`` (tasks
            without ``credit``).
        row_statistic: Name in :data:`iqa_bench.stats.difference.ROW_STATISTICS` that
            ``compare`` bootstraps for tasks without ``credit``.
        stratified: Whether ``compare`` resamples within subsets (``False``: one pool, e.g.
            SRCC over all images as published).
        scale: Factor from the statistic to the shown value (100 for percent).
        digits: Decimals ``compare`` prints.
        unit: Unit of a difference, e.g. ``"percentage points"``.
    """

    spec: TaskSpec
    heading: str
    title: str
    statistic: str
    load: Loader
    score: Score | None = None
    human: Callable[[Run, StatsOptions], BootstrapResult] | None = None
    human_note: str = ""
    credit: Callable[[Any], np.ndarray] | None = None
    preference: Callable[[Any], PreferenceCorrelation] | None = None
    compared: Callable[[Any], tuple[np.ndarray, np.ndarray]] | None = None
    row_statistic: str | None = None
    stratified: bool = True
    scale: float = 100.0
    digits: int = 1
    unit: str = "percentage points"

    def __post_init__(self) -> None:
        if self.credit is None and (self.compared is None) != (self.row_statistic is None):
            raise InputError(
                f"task {self.spec.name!r}: give compared and row_statistic together (or a credit)."
            )

    @property
    def name(self) -> str:
        """The task's name."""
        return self.spec.name

    @property
    def comparable(self) -> bool:
        """Whether ``compare`` can bootstrap a difference of two runs on this task."""
        return self.credit is not None or self.row_statistic is not None


TASK_ANALYSES: dict[str, TaskAnalysis] = {}


def register_task_analysis(analysis: TaskAnalysis) -> TaskAnalysis:
    """Registers ``analysis`` and its spec (in :data:`iqa_bench.tasks.TASKS`).

    Raises:
        ValueError: When the task name is taken by another spec or another analysis.

    Example:
        >>> register_task_analysis(TASK_ANALYSES["mos"]).name
        'mos'
    """
    known = TASK_ANALYSES.get(analysis.name)
    if known is not None and known is not analysis:
        raise InputError(f"task {analysis.name!r} already has an analysis; pick another name.")
    register_task(analysis.spec)
    TASK_ANALYSES[analysis.name] = analysis
    return analysis


def task_analysis(task: str) -> TaskAnalysis:
    """The analysis of ``task`` (``ValueError`` naming the registered tasks otherwise).

    Example:
        >>> task_analysis("2afc").heading
        '2AFC'
    """
    if task not in TASK_ANALYSES:
        raise InputError(f"task: {task!r} is not one of {', '.join(TASK_ANALYSES)}.")
    return TASK_ANALYSES[task]


def _kw(options: StatsOptions) -> dict[str, Any]:
    return {"n_boot": options.n_boot, "confidence": options.confidence, "seed": options.seed}


def _twoafc_score(data: TwoAFCData, present: tuple[str, ...], o: StatsOptions) -> BootstrapResult:
    return bootstrap_twoafc(data.d0, data.d1, data.h, data.subset, subset_order=present, **_kw(o))


def _twoafc_human(run: Run, options: StatsOptions) -> BootstrapResult:
    _, subset, h = run.judgments("2afc")
    ceiling = h**2 + (1.0 - h) ** 2
    strata = {s: ceiling[subset == s] for s in run.subsets("2afc")}
    return bootstrap_statistic(strata, lambda x: x.mean(axis=1), **_kw(options))


def _twoafc_preference(data: TwoAFCData) -> PreferenceCorrelation:
    # -PSNR of identical patches is -inf: it orders fine but has no Pearson correlation.
    keep = np.isfinite(data.d0) & np.isfinite(data.d1)
    if keep.sum() < 2:
        return PreferenceCorrelation(float("nan"), float("nan"), int(keep.sum()))
    return preference_correlation(data.d0[keep], data.d1[keep], data.h[keep])


def _jnd_score(data: JNDData, present: tuple[str, ...], o: StatsOptions) -> BootstrapResult:
    return bootstrap_jnd(data.d, data.same, data.subset, subset_order=present, **_kw(o))


def _mos_compared(data: MOSData) -> tuple[np.ndarray, np.ndarray]:
    # SRCC wants quality-like predictions and judgments where higher = better.
    return -data.d, data.mos if data.higher_is_better_mos else -data.mos


for _analysis in (
    TaskAnalysis(
        TASKS["2afc"],
        heading="2AFC",
        title="2AFC accuracy (%)",
        statistic="2AFC avg (%)",
        load=Run.twoafc,
        score=_twoafc_score,
        human=_twoafc_human,
        human_note="Human = expected agreement of one judge with the panel, mean of h²+(1-h)².",
        credit=lambda data: twoafc_credit(data.d0, data.d1, data.h),
        preference=_twoafc_preference,
    ),
    TaskAnalysis(
        TASKS["jnd"],
        heading="JND",
        title="JND mAP (%)",
        statistic="JND mAP (%)",
        load=Run.jnd,
        score=_jnd_score,
        compared=lambda data: (data.d, data.same),
        row_statistic="jnd_ap",
    ),
    TaskAnalysis(
        TASKS["mos"],
        heading="MOS",
        title="Correlation with the MOS",
        statistic="SRCC",
        load=Run.mos,
        compared=_mos_compared,
        row_statistic="srcc",
        stratified=False,
        scale=1.0,
        digits=3,
        unit="SRCC units",
    ),
):
    register_task_analysis(_analysis)

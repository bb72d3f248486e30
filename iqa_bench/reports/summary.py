"""Turns a loaded run into the numbers every report shows (the report model).

:func:`summarize` computes, per task and metric, the per-subset score with a stratified
percentile-bootstrap CI, the plain mean over subsets (the paper's "Avg") with its CI, the 2AFC
human ceiling, the preference correlation and the Holm-corrected significance matrix. Scores
are percentages: 2AFC accuracy x 100 and JND mAP x 100, like the LPIPS paper's tables. A run
with the ``mos`` task also gets SRCC/KRCC/PLCC against the MOS (:mod:`.mos`).
Renderers (Markdown, LaTeX, CSV, figures, HTML, terminal) only format a :class:`RunSummary`.

Example:
    >>> from iqa_bench.results import load_run
    >>> options = StatsOptions(n_boot=200, n_perm=500)
    >>> s = summarize(load_run("runs/synthetic/RUN"), options)  # doctest: +SKIP
    >>> print(terminal_summary(s))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..results import DatasetInfo, Run, load_run
from ..stats import (
    BootstrapResult,
    PreferenceCorrelation,
    SignificanceMatrix,
    StatsOptions,
    significance_matrix,
)
from .analyses import TASK_ANALYSES, TaskAnalysis, task_analysis
from .mos import MOSSummary, mos_terminal_lines, summarize_mos

__all__ = [
    "Cell",
    "EXCLUSION_STAGES",
    "Excluded",
    "HUMAN",
    "MetricRow",
    "RunSummary",
    "TaskSummary",
    "UNKNOWN_TASK",
    "credits_by_sample",
    "dataset_line",
    "dataset_warning",
    "excluded_sentence",
    "format_cell",
    "metric_row",
    "subset_counts",
    "summarize",
    "terminal_summary",
]

HUMAN = "human-ceiling"
#: Where a sample was excluded: key -> the words reports use.
EXCLUSION_STAGES = {
    "opening": "dropped when opening the dataset",
    "scoring": "failed while scoring",
}
#: ``task`` of an exclusion whose task the manifest does not say (runs of older versions).
UNKNOWN_TASK = "task unknown"
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
class Excluded:
    """How many samples one stage excluded from one task's subset.

    Attributes:
        stage: A key of :data:`EXCLUSION_STAGES` (``"opening"`` or ``"scoring"``).
        task: ``"2afc"``, ``"jnd"``, ``"mos"``, ... or :data:`UNKNOWN_TASK`.
        subset: Subset name, ``""`` when unknown.
        n: Samples.
    """

    stage: str
    task: str
    subset: str
    n: int


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
    """All rows of one task with a per-subset score (see :mod:`.analyses`).

    Attributes:
        task: The task's name, e.g. ``"2afc"`` or ``"jnd"``.
        subsets: Subset names in the paper's (judgments) order.
        rows: Metric rows in grouped card order.
        human: The human-ceiling row (tasks whose analysis has one: 2AFC), else ``None``.
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
        raise InputError(
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
        preference: Metric -> Pearson/Spearman of ``d0 - d1`` vs ``h`` on 2AFC (the first task
            whose analysis has a ``preference``).
        significance: Paired sign-flip tests of per-sample credits (2AFC: the first task whose
            analysis has a ``credit``) across ok metrics, Holm-corrected; ``None`` with fewer
            than two metrics.
        significance_n: Samples used for the significance tests (valid for every metric).
        skipped: ``(metric, reason)`` for metrics that did not run.
        failed: Samples that failed while scoring, per task (the manifest's
            ``failed_samples``).
        options: The resampling settings (``n_boot``, ``n_perm``, ``seed``, ``confidence``).
        mos: Correlations with the MOS when the run has the ``mos`` task, else ``None``.
        excluded: Every excluded sample counted by stage, task and subset: dropped when opening
            the dataset (manifest ``bad_samples``) or failed while scoring (``failed_samples``).
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
    options: StatsOptions
    mos: MOSSummary | None = None
    excluded: tuple[Excluded, ...] = ()

    @property
    def n_boot(self) -> int:
        """Bootstrap resamples per CI."""
        return self.options.n_boot

    @property
    def n_perm(self) -> int:
        """Sign flips per permutation test."""
        return self.options.n_perm

    @property
    def seed(self) -> int:
        """Seed of every resampling."""
        return self.options.seed

    @property
    def confidence(self) -> float:
        """CI coverage, e.g. 0.95."""
        return self.options.confidence

    def excluded_total(self, stage: str | None = None, task: str | None = None) -> int:
        """Excluded samples, optionally of one stage and/or one task.

        Example:
            >>> summary.excluded_total("opening")  # doctest: +SKIP
            2
        """
        return sum(
            e.n
            for e in self.excluded
            if (stage is None or e.stage == stage) and (task is None or e.task == task)
        )

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
                "excluded_samples": {
                    "total": self.excluded_total(),
                    "by_stage": {k: self.excluded_total(k) for k in EXCLUSION_STAGES},
                    "stages": EXCLUSION_STAGES,
                    "counts": [
                        {"stage": e.stage, "task": e.task, "subset": e.subset, "n": e.n}
                        for e in self.excluded
                    ],
                },
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


def metric_row(
    metric: str,
    group: str,
    boot: BootstrapResult,
    n: dict[str, int],
    failed: int,
    order: tuple[str, ...],
) -> MetricRow:
    """A table row (2AFC, JND): per-subset and average cells of one metric's bootstrap result."""
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


def subset_counts(
    subset: np.ndarray, order: tuple[str, ...]
) -> tuple[tuple[str, ...], dict[str, int]]:
    """The subsets of ``order`` present in ``subset``, and the number of samples of each."""
    present = tuple(s for s in order if (subset == s).any())
    return present, {s: int((subset == s).sum()) for s in present}


def _task_summary(
    run: Run, analysis: TaskAnalysis, names: list[str], options: StatsOptions
) -> TaskSummary:
    """One row per metric (the analysis's bootstrap of its aligned data), and the human row."""
    task = analysis.name
    order = run.subsets(task)
    rows = []
    for name in names:
        data = analysis.load(run, name)
        present, n = subset_counts(data.subset, order)
        boot = analysis.score(data, present, options)
        rows.append(metric_row(name, run.metrics[name].group, boot, n, data.n_failed, order))
    human = None
    if analysis.human is not None and run.dataset.human_ceiling:
        _, subset, _ = run.judgments(task)
        boot = analysis.human(run, options)
        human = metric_row(HUMAN, "human", boot, subset_counts(subset, order)[1], 0, order)
    return TaskSummary(task, order, tuple(rows), human)


def credits_by_sample(
    run: Run, metric: str, task: str = "2afc"
) -> dict[str, tuple[float, str, float]]:
    """Per-sample credit of ``metric`` on ``task``: sample_id -> (credit, subset, judgment).

    Raises:
        ValueError: When the task's analysis has no per-sample credit.
    """
    analysis = task_analysis(task)
    if analysis.credit is None:
        raise InputError(f"task {task!r} has no per-sample credit; its statistic is not a mean.")
    data = analysis.load(run, metric)
    sample_id, _, values = run.judgments(task)
    judgment = dict(zip(sample_id.tolist(), values.tolist(), strict=True))
    return {
        s: (float(c), str(sub), float(judgment[s]))
        for s, c, sub in zip(data.sample_id, analysis.credit(data), data.subset, strict=True)
    }


def _significance(
    run: Run, task: str, names: list[str], options: StatsOptions
) -> tuple[SignificanceMatrix | None, int]:
    if len(names) < 2:
        return None, 0
    per_metric = {name: credits_by_sample(run, name, task) for name in names}
    # Paired tests need the same samples for every metric: drop any sample one metric failed.
    sid, _, _ = run.judgments(task)
    common = [s for s in sid.tolist() if all(s in c for c in per_metric.values())]
    credits = {name: [per_metric[name][s][0] for s in common] for name in names}
    subset = [per_metric[names[0]][s][1] for s in common]
    matrix = significance_matrix(credits, subset, n_perm=options.n_perm, seed=options.seed)
    return matrix, len(common)


def _first_task_with(tasks: list[str], field: str) -> TaskAnalysis | None:
    return next((TASK_ANALYSES[t] for t in tasks if getattr(TASK_ANALYSES[t], field)), None)


def summarize(
    run: Run | str | Path,
    options: StatsOptions | None = None,
    *,
    n_boot: int | None = None,
    n_perm: int | None = None,
    seed: int | None = None,
    confidence: float | None = None,
) -> RunSummary:
    """Computes scores, CIs, the human ceiling, preference correlations and significance.

    Args:
        run: A run from :func:`iqa_bench.results.load_run`, or a run directory.
        options: Resampling settings; defaults to ``StatsOptions()``.
        n_boot: Overrides ``options.n_boot`` (bootstrap resamples per CI) when given.
        n_perm: Overrides ``options.n_perm`` (sign flips per significance test) when given.
        seed: Overrides ``options.seed`` when given.
        confidence: Overrides ``options.confidence`` (CI coverage) when given.

    Returns:
        A :class:`RunSummary`.

    Raises:
        ValueError: When the run has no task with a report or the stats reject the data.

    Example:
        >>> s = summarize(load_run(run_dir), StatsOptions(n_boot=200, n_perm=500))  # doctest: +SKIP
        >>> round(s.tasks["2afc"].row("lpips-alex").avg.score, 1)  # doctest: +SKIP
        71.8
    """
    options = (options or StatsOptions()).with_overrides(n_boot, n_perm, seed, confidence)
    run = run if isinstance(run, Run) else load_run(run)
    names = run.metric_names()
    reported = [t for t in run.tasks() if t in TASK_ANALYSES]
    if not reported:
        raise InputError(
            f"{run.path}: no {', '.join(TASK_ANALYSES)} task in the manifest (tasks: "
            f"{run.tasks()}); run the benchmark on a dataset with human judgments."
        )
    scored = [t for t in reported if TASK_ANALYSES[t].score is not None]
    tasks = {t: _task_summary(run, TASK_ANALYSES[t], names, options) for t in scored}
    paired = _first_task_with(scored, "credit")
    sig, sig_n = _significance(run, paired.name, names, options) if paired else (None, 0)
    pref = _first_task_with(scored, "preference")
    preference = {n: pref.preference(pref.load(run, n)) for n in names} if pref else {}
    return RunSummary(
        run_id=run.run_id,
        dataset=run.dataset,
        manifest=run.manifest,
        tasks=tasks,
        groups={n: m.group for n, m in run.metrics.items()},
        preference=preference,
        significance=sig,
        significance_n=sig_n,
        skipped=run.skipped(),
        failed=dict(Counter(str(entry.get("task", "?")) for entry in run.failed_samples())),
        options=options,
        mos=summarize_mos(run, names, options) if "mos" in reported else None,
        excluded=_excluded(run),
    )


def _subset_lookup(run: Run, task: str) -> dict[str, str]:
    """sample_id -> subset from the task's judgments (empty when they cannot be read)."""
    try:
        sample_id, subset, _ = run.judgments(task)
    except (ValueError, FileNotFoundError):  # an unscorable task or a missing judgments file
        return {}
    return dict(zip(sample_id.tolist(), subset.tolist(), strict=True))


def _excluded(run: Run) -> tuple[Excluded, ...]:
    """Counts of every excluded sample by stage, task and subset, in the run's task order."""
    tasks = run.tasks()
    # An entry of an older runner has no task; a run with one task can only mean that one.
    only = tasks[0] if len(tasks) == 1 else UNKNOWN_TASK
    counts: Counter[tuple[str, str, str]] = Counter()
    for entry in run.bad_samples():
        task = str(entry.get("task") or only)
        counts["opening", task, str(entry.get("subset") or "")] += 1
    lookups: dict[str, dict[str, str]] = {}
    for entry in run.failed_samples():
        task = str(entry.get("task") or only)
        if task not in lookups:
            lookups[task] = _subset_lookup(run, task) if task != UNKNOWN_TASK else {}
        counts["scoring", task, lookups[task].get(str(entry.get("sample_id")), "")] += 1

    def order(key: tuple[str, str, str]) -> tuple[int, int, str]:
        stage, task, subset = key
        rank = tasks.index(task) if task in tasks else len(tasks)
        return list(EXCLUSION_STAGES).index(stage), rank, subset

    return tuple(
        Excluded(*key, n) for key, n in sorted(counts.items(), key=lambda kv: order(kv[0]))
    )


def excluded_sentence(summary: RunSummary, task: str | None = None) -> str:
    """E.g. ``"3 sample(s) excluded: 2 dropped when opening the dataset, 1 failed while
    scoring."`` for the whole run, or for one ``task`` (whose count includes exclusions whose task
    is unknown, said so)."""
    tasks = [task, UNKNOWN_TASK] if task is not None else [None]
    by_stage = {k: sum(summary.excluded_total(k, t) for t in tasks) for k in EXCLUSION_STAGES}
    total = sum(by_stage.values())
    detail = ", ".join(f"{n} {EXCLUSION_STAGES[k]}" for k, n in by_stage.items())
    unknown = summary.excluded_total(task=UNKNOWN_TASK) if task is not None else 0
    note = f" ({unknown} of them of unknown task, counted under every task)" if unknown else ""
    return f"{total} sample(s) excluded: {detail}{note}."


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


def _score_lines(summary: RunSummary) -> list[str]:
    """One column per task of the summary (its headline avg), one line per metric and human."""
    if not summary.tasks:
        return []
    names = summary.metric_names()
    width = max([len(HUMAN), len("metric"), *(len(n) for n in names)])
    labels = [task_analysis(t).statistic for t in summary.tasks]
    widths = [max(12, len(label)) for label in labels]
    head = "".join(f"  {label:>{w}}" for label, w in zip(labels, widths, strict=True))
    lines = [f"{'metric':<{width}}  {'group':<13}{head}"]
    for name in names:
        cells = [format_cell(ts.row(name).avg) for ts in summary.tasks.values()]
        shown = "".join(f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True))
        lines.append(f"{name:<{width}}  {summary.groups[name]:<13}{shown}")
    if any(ts.human for ts in summary.tasks.values()):
        cells = [format_cell(ts.human.avg) if ts.human else "-" for ts in summary.tasks.values()]
        shown = "".join(f"  {c:>{w}}" for c, w in zip(cells, widths, strict=True))
        lines.append(f"{HUMAN:<{width}}  {'human':<13}{shown}")
    return lines


def terminal_summary(summary: RunSummary) -> str:
    """A short fixed-width table for the terminal: each task's headline avg with CI half-widths
    (2AFC avg, JND mAP), then the MOS correlations.

    Example:
        >>> print(terminal_summary(summarize(run, StatsOptions(n_boot=200))))  # doctest: +SKIP
        run 20261126-131500-synthetic: dataset synthetic (card v1, split val; SYNTHETIC ...)
    """
    lines = [f"run {summary.run_id}: {dataset_line(summary)}"]
    warning = dataset_warning(summary.dataset)
    if warning:
        lines.append(f"!! {warning} !!")
    lines += _score_lines(summary)
    if not summary.dataset.human_ceiling and summary.tasks:
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
    if summary.excluded:
        parts = []
        for stage, words in EXCLUSION_STAGES.items():
            per_task = Counter()
            for e in summary.excluded:
                if e.stage == stage:
                    per_task[e.task] += e.n
            if per_task:
                detail = ", ".join(f"{t} {n}" for t, n in per_task.items())
                parts.append(f"{sum(per_task.values())} {words}: {detail}")
        lines.append(f"excluded samples: {summary.excluded_total()} ({'; '.join(parts)})")
    return "\n".join(lines)

"""The task abstraction: a task registered in one place gets its report rows, table, CSV and
comparison through :mod:`iqa_bench.reports.analyses`; the shared bootstrap keeps compare's numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.errors import InputError
from iqa_bench.reports import (
    TASK_ANALYSES,
    StatsOptions,
    TaskAnalysis,
    compare_data,
    register_task_analysis,
    summarize,
    terminal_summary,
)
from iqa_bench.reports.tables import markdown_table, score_table, tidy_rows
from iqa_bench.results import load_run
from iqa_bench.stats import bootstrap_columns, mean_difference_interval
from iqa_bench.tasks import TASKS, TaskSpec, register_task
from tests.run_fixture import FakeMetric, make_run

OPTIONS = StatsOptions(n_boot=200, n_perm=200)
TOY = "toy"
TOY_SUBSETS = ("left", "right")
METRICS = (FakeMetric("good", "classical", 0.1), FakeMetric("poor", "custom", 1.0))


def _toy_credit(data) -> np.ndarray:
    """1 where the metric calls a pair "far" (d > 0.5) exactly when the judges did."""
    return ((data.distances["d"] > 0.5) == (data.judgment > 0.5)).astype(np.float64)


def _toy_score(data, present: tuple[str, ...], options: StatsOptions):
    return bootstrap_columns(
        lambda x: x.mean(axis=1),
        [_toy_credit(data)],
        data.subset,
        subset_order=present,
        n_boot=options.n_boot,
        confidence=options.confidence,
        seed=options.seed,
    )


def _toy_analysis() -> TaskAnalysis:
    spec = TaskSpec(TOY, ("a", "b"), (("a", "b"),), ("d",), "far")
    return TaskAnalysis(
        spec,
        heading="Toy",
        title="Toy agreement (%)",
        statistic="Toy avg (%)",
        load=lambda run, metric: run.aligned(metric, TOY),
        score=_toy_score,
        credit=_toy_credit,
    )


@pytest.fixture
def toy_task() -> Iterator[TaskAnalysis]:
    analysis = register_task_analysis(_toy_analysis())
    yield analysis
    del TASK_ANALYSES[TOY], TASKS[TOY]


def _add_toy_task(run_dir: Path, seed: int = 0, n: int = 30) -> Path:
    """Writes judgments/toy.npz and scores/<metric>/toy.npz and lists the task in the manifest."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"val/{s}/t{i:03d}" for s in TOY_SUBSETS for i in range(n)])
    subset = np.repeat(TOY_SUBSETS, n)
    truth = rng.uniform(size=ids.size)
    far = (truth > 0.5).astype(np.float64)
    np.savez(run_dir / "judgments" / f"{TOY}.npz", sample_id=ids, subset=subset, far=far)
    for metric in METRICS:
        d = truth + metric.noise * rng.normal(size=ids.size) * 0.5
        np.savez(run_dir / "scores" / metric.name / f"{TOY}.npz", sample_id=ids, d=d)
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tasks"][TOY] = {"n": int(ids.size), "subsets": {s: n for s in TOY_SUBSETS}}
    manifest_path.write_text(json.dumps(manifest))
    return run_dir


@pytest.fixture
def toy_run(tmp_path: Path, toy_task: TaskAnalysis) -> Path:
    return _add_toy_task(make_run(tmp_path, metrics=METRICS, skipped={}, failed=()))


def _expected_avg(run_dir: Path, metric: str) -> float:
    """Percent agreement, mean over subsets, computed without the report code."""
    _, subset, far = load_run(run_dir).judgments(TOY)
    with np.load(run_dir / "scores" / metric / f"{TOY}.npz") as npz:
        agree = (npz["d"] > 0.5) == (far > 0.5)
    return 100 * np.mean([agree[subset == s].mean() for s in TOY_SUBSETS])


def test_a_task_registered_in_one_place_gets_its_summary_rows(toy_run: Path) -> None:
    summary = summarize(load_run(toy_run), OPTIONS)
    assert list(summary.tasks) == ["2afc", "jnd", TOY]
    toy = summary.tasks[TOY]
    assert toy.subsets == TOY_SUBSETS and toy.human is None
    for metric in ("good", "poor"):
        assert toy.row(metric).avg.score == pytest.approx(_expected_avg(toy_run, metric))
        assert toy.row(metric).avg.n == 60
    assert toy.row("good").avg.score > toy.row("poor").avg.score


def test_a_registered_task_gets_its_table_csv_and_terminal_column(toy_run: Path) -> None:
    summary = summarize(load_run(toy_run), OPTIONS)
    table = score_table(summary, TOY)
    assert table.title.startswith("Toy agreement (%) on synthetic")
    assert table.columns == (*TOY_SUBSETS, "Avg") and [r.metric for r in table.rows] == [
        "good",
        "poor",
    ]
    assert "| Classical | good |" in markdown_table(table)
    rows = [r for r in tidy_rows(summary) if r["task"] == TOY]
    assert len(rows) == 2 * (len(TOY_SUBSETS) + 1)
    good_avg = next(r for r in rows if r["metric"] == "good" and r["subset"] == "avg")
    assert good_avg["score"] == round(_expected_avg(toy_run, "good"), 4)
    assert "Toy avg (%)" in terminal_summary(summary).splitlines()[2]


def test_a_registered_task_with_credits_is_compared_with_a_paired_test(
    tmp_path: Path, toy_task: TaskAnalysis
) -> None:
    run_a = _add_toy_task(make_run(tmp_path, run_id="a", metrics=METRICS, skipped={}, failed=()))
    run_b = _add_toy_task(make_run(tmp_path, run_id="b", metrics=METRICS, skipped={}, failed=()))
    cmp = compare_data(run_a, run_b, OPTIONS, task=TOY)
    assert cmp.paired and cmp.statistic == "Toy avg (%)"
    for row in cmp.rows:  # the same scores in both runs: no difference, p = 1
        assert row.difference == 0 and row.ci_low == row.ci_high == 0 and row.p_value == 1


def test_every_task_the_runner_can_write_has_an_analysis() -> None:
    assert set(TASKS) == set(TASK_ANALYSES)
    for name, analysis in TASK_ANALYSES.items():
        assert analysis.spec is TASKS[name]


def test_registering_a_second_analysis_under_a_taken_name_fails(toy_task: TaskAnalysis) -> None:
    with pytest.raises(ValueError, match="'toy' already has an analysis"):
        register_task_analysis(_toy_analysis())
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_task(TaskSpec(TOY, ("a",), (), (), "x"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_boot", 10, "n_boot=10 is too small"),
        ("n_perm", 2.5, "n_perm must be an integer"),
        ("seed", None, "seed must be an integer"),
        ("confidence", 1.5, "confidence=1.5 must lie in"),
    ],
)
def test_stats_options_reject_bad_settings_naming_them(field, value, message) -> None:
    with pytest.raises(InputError, match=message):
        StatsOptions(**{field: value})


def _former_compare_means(credit, subset, n_boot, rng) -> np.ndarray:
    """compare's own stratified bootstrap before it moved to iqa_bench.stats (the reference)."""
    present = list(dict.fromkeys(subset.tolist()))
    reps = np.zeros(n_boot)
    for s in present:
        values = credit[subset == s]
        idx = rng.integers(0, values.size, size=(n_boot, values.size))
        reps += values[idx].mean(axis=1) / len(present)
    return reps


@pytest.mark.parametrize("paired", [True, False])
def test_mean_difference_interval_reproduces_the_former_compare_bootstrap(paired: bool) -> None:
    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 2, size=90).astype(float), rng.uniform(size=90)
    subset = np.repeat(["x", "y", "z"], 30)
    ref_rng, new_rng = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(2):  # one stream shared across calls, as compare shares it across metrics
        if paired:
            reps = _former_compare_means(a - b, subset, 300, ref_rng)
        else:
            reps = _former_compare_means(a, subset, 300, ref_rng) - _former_compare_means(
                b[:60], subset[:60], 300, ref_rng
            )
        alpha = (1.0 - 0.95) / 2.0  # as compare computed it: 0.025 plus a rounding error
        expected = tuple(np.quantile(reps, [alpha, 1.0 - alpha]))
        args = (a, b, subset) if paired else (a, b[:60], subset, subset[:60])
        got = mean_difference_interval(*args, paired=paired, n_boot=300, rng=new_rng)
        assert got == expected  # bit for bit, so compare's printed numbers did not move

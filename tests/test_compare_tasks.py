"""Comparing two runs on JND and MOS data, and the bootstrap of differences behind it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from iqa_bench.cli import main
from iqa_bench.reports import compare_data, compare_runs
from iqa_bench.results import load_run
from iqa_bench.stats import (
    bootstrap_difference,
    bootstrap_of,
    jnd_ap,
    jnd_map,
    unpaired_difference,
)
from tests.mos_fixture import FakeMOSMetric, make_mos_run
from tests.run_fixture import FakeMetric, make_run

FAST = {"n_boot": 300, "n_perm": 300}


def _mos_metrics(alex_noise: float) -> tuple[FakeMOSMetric, ...]:
    return (FakeMOSMetric("lpips-alex", "lpips", alex_noise), FakeMOSMetric("l2", "classical", 0.4))


def _jnd_map_on(run_dir: Path, metric: str, ids: list[str]) -> float:
    data = load_run(run_dir).jnd(metric)
    keep = np.isin(data.sample_id, ids)
    return jnd_map(data.d[keep], data.same[keep], data.subset[keep]).mean


# -- statistics --------------------------------------------------------------------------------


def test_paired_difference_estimate_is_the_difference_of_the_statistics():
    rng = np.random.default_rng(0)
    truth = rng.uniform(size=200)
    same = (rng.uniform(size=200) > truth).astype(float)
    a, b = truth + 0.1 * rng.normal(size=200), truth + 0.5 * rng.normal(size=200)
    subset = np.repeat(["x", "y"], 100)
    diff = bootstrap_difference("jnd_ap", a, b, same, subset, n_boot=200)
    for s in ("x", "y"):
        k = subset == s
        assert diff.estimates[s] == pytest.approx(jnd_ap(a[k], same[k]) - jnd_ap(b[k], same[k]))
    assert diff.mean_interval[0] <= diff.mean <= diff.mean_interval[1]
    rho = bootstrap_difference("srcc", -a, -b, -truth, n_boot=200)
    expected = scipy.stats.spearmanr(-a, -truth)[0] - scipy.stats.spearmanr(-b, -truth)[0]
    assert rho.mean == pytest.approx(expected)


def test_pairing_narrows_the_interval_of_two_correlated_predictors():
    rng = np.random.default_rng(1)
    mos = rng.uniform(size=300)
    shared = 0.3 * rng.normal(size=300)
    a, b = mos + shared, mos + shared + 0.05 * rng.normal(size=300)
    paired = bootstrap_difference("srcc", a, b, mos, n_boot=400)
    unpaired = unpaired_difference(
        bootstrap_of("srcc", a, mos, n_boot=400, seed=1),
        bootstrap_of("srcc", b, mos, n_boot=400, seed=2),
    )
    assert unpaired[0] == pytest.approx(paired.mean)
    width_paired = paired.mean_interval[1] - paired.mean_interval[0]
    width_unpaired = unpaired[1][1] - unpaired[1][0]
    assert width_paired < 0.5 * width_unpaired


def test_difference_rejects_an_unknown_statistic_and_unequal_replicates():
    with pytest.raises(ValueError, match="statistic: 'plcc' is not one of jnd_ap, srcc"):
        bootstrap_difference("plcc", [1, 2, 3], [1, 2, 3], [1, 2, 3])
    a = bootstrap_of("srcc", [1, 2, 3, 4] * 5, [1, 2, 3, 4] * 5, n_boot=100)
    b = bootstrap_of("srcc", [1, 2, 3, 4] * 5, [1, 2, 3, 4] * 5, n_boot=200)
    with pytest.raises(ValueError, match="same n_boot"):
        unpaired_difference(a, b)


# -- run comparison ----------------------------------------------------------------------------


def test_jnd_comparison_of_runs_on_the_same_pairs_is_paired_without_p_values(tmp_path):
    good = [FakeMetric("lpips-alex", "lpips", 0.05), FakeMetric("l2", "classical", 0.6)]
    bad = [FakeMetric("lpips-alex", "lpips", 0.6), FakeMetric("l2", "classical", 0.6)]
    run_a = make_run(tmp_path, run_id="a", metrics=good, skipped={}, n_per_subset=80)
    run_b = make_run(tmp_path, run_id="b", metrics=bad, skipped={}, n_per_subset=80, metric_seed=9)
    cmp = compare_data(run_a, run_b, task="jnd", **FAST)
    assert cmp.paired and cmp.task == "jnd" and cmp.statistic == "JND mAP (%)"
    alex = {r.metric: r for r in cmp.rows}["lpips-alex"]
    assert alex.p_value is None and alex.p_holm is None
    ids = load_run(run_a).jnd("lpips-alex").sample_id.tolist()
    expected = _jnd_map_on(run_a, "lpips-alex", ids) - _jnd_map_on(run_b, "lpips-alex", ids)
    assert alex.difference == pytest.approx(100 * expected)
    assert alex.ci_low > 0, "a much less noisy metric must be significantly better"
    assert alex.a.score == pytest.approx(100 * _jnd_map_on(run_a, "lpips-alex", ids))


def test_mos_comparison_is_srcc_over_all_images_and_respects_dmos_orientation(tmp_path):
    kw = {"dataset": "live", "higher_is_better_mos": False, "n_per_type": 40}
    run_a = make_mos_run(tmp_path, run_id="a", metrics=_mos_metrics(0.05), **kw)
    run_b = make_mos_run(tmp_path, run_id="b", metrics=_mos_metrics(0.5), **kw)
    cmp = compare_data(run_a, run_b, task="mos", **FAST)
    assert cmp.paired and cmp.statistic == "SRCC"
    alex = {r.metric: r for r in cmp.rows}["lpips-alex"]
    srcc = []
    for run in (run_a, run_b):
        data = load_run(run).mos("lpips-alex")
        srcc.append(scipy.stats.spearmanr(-data.d, -data.mos)[0])  # DMOS: higher = worse
    assert alex.a.score == pytest.approx(srcc[0]) and alex.a.score > 0.9
    assert alex.difference == pytest.approx(srcc[0] - srcc[1])
    assert alex.ci_low > 0
    text = compare_runs(run_a, run_b, **FAST)
    assert text.startswith("SRCC: A = a, B = b (paired by sample_id)")
    assert re.search(
        r"^lpips-alex\s+0\.9\d\d ± 0\.\d{3}\s+0\.\d{3} ± 0\.\d{3}\s+\+0\.\d{3}", text, re.M
    )


def test_runs_on_different_jnd_pairs_get_an_unpaired_interval(tmp_path):
    run_a = make_run(tmp_path, run_id="a")
    run_b = make_run(tmp_path, run_id="b", id_prefix="x", judgment_seed=4)
    cmp = compare_data(run_a, run_b, task="jnd", **FAST)
    assert not cmp.paired and "jnd samples do not match" in cmp.notes[-1]
    for r in cmp.rows:
        assert r.p_value is None and r.ci_low < r.difference < r.ci_high
        assert r.difference == pytest.approx(r.a.score - r.b.score)


def test_compare_text_covers_every_shared_task_and_rejects_a_missing_one(tmp_path, capsys):
    run_a = make_run(tmp_path, run_id="a")
    run_b = make_run(tmp_path, run_id="b", metric_seed=3)
    text = compare_runs(run_a, run_b, **FAST)
    assert "2AFC avg (%): A = a" in text and "\n\nJND mAP (%): A = a" in text
    assert main(["compare", str(run_a), str(run_b), "--task", "jnd", "--n-boot", "200"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("JND mAP (%)") and "2AFC" not in out
    with pytest.raises(ValueError, match="has no mos task .*compare a task both runs scored"):
        compare_data(run_a, run_b, task="mos")
    mos = make_mos_run(tmp_path, run_id="m")
    with pytest.raises(ValueError, match="share no task to compare"):
        compare_runs(run_a, mos, **FAST)

"""Tests for iqa_bench.stats.bootstrap: stratified percentile intervals and their coverage."""

from __future__ import annotations

import numpy as np
import pytest

from iqa_bench.stats import (
    bootstrap_jnd,
    bootstrap_statistic,
    bootstrap_twoafc,
    jnd_map,
    percentile_interval,
    twoafc_scores,
)


def _row_mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1)


def _twoafc_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    d0, d1 = rng.random(n), rng.random(n)
    h = rng.integers(0, 6, n) / 5.0
    subset = np.where(np.arange(n) < n // 3, "cnn", "traditional")
    return d0, d1, h, subset


def test_bootstrap_twoafc_estimates_equal_twoafc_scores() -> None:
    d0, d1, h, subset = _twoafc_data()
    res = bootstrap_twoafc(d0, d1, h, subset, n_boot=200)
    ref = twoafc_scores(d0, d1, h, subset)
    assert res.estimates == pytest.approx(ref.scores)
    assert res.mean == pytest.approx(ref.mean)
    assert list(res.intervals) == ["cnn", "traditional"]


def test_bootstrap_intervals_bracket_estimates() -> None:
    d0, d1, h, subset = _twoafc_data()
    res = bootstrap_twoafc(d0, d1, h, subset, n_boot=300)
    for name, (low, high) in res.intervals.items():
        assert low < res.estimates[name] < high
    assert res.mean_interval[0] < res.mean < res.mean_interval[1]


def test_bootstrap_is_reproducible_for_a_seed() -> None:
    d0, d1, h, subset = _twoafc_data()
    a = bootstrap_twoafc(d0, d1, h, subset, n_boot=200, seed=3)
    b = bootstrap_twoafc(d0, d1, h, subset, n_boot=200, seed=3)
    c = bootstrap_twoafc(d0, d1, h, subset, n_boot=200, seed=4)
    assert a == b
    assert a.mean_interval != c.mean_interval


def test_bootstrap_resamples_within_subsets() -> None:
    # One subset always right, one always wrong: stratified resamples keep both subsets whole,
    # so the mean over subsets is 0.5 in every resample. Pooled resampling would spread it.
    n = 100
    res = bootstrap_twoafc(
        np.zeros(2 * n), np.ones(2 * n), np.r_[np.zeros(n), np.ones(n)], ["a"] * n + ["b"] * n
    )
    assert res.intervals == {"a": (1.0, 1.0), "b": (0.0, 0.0)}
    assert res.mean_interval == pytest.approx((0.5, 0.5))


def test_bootstrap_width_matches_binomial_standard_error() -> None:
    # For a mean of n Bernoulli(p) credits the 95% interval spans about 2 * 1.96 * sqrt(p q / n).
    n, p = 2000, 0.3
    credits = (np.random.default_rng(1).random(n) < p).astype(float)
    res = bootstrap_statistic({"all": credits}, _row_mean, n_boot=1000)
    low, high = res.intervals["all"]
    expected = 2 * 1.96 * np.sqrt(credits.mean() * (1 - credits.mean()) / n)
    assert high - low == pytest.approx(expected, rel=0.1)


def test_bootstrap_mean_interval_covers_true_mean_at_nominal_rate() -> None:
    # Coverage simulation: Bernoulli credits with known p in two subsets of different sizes.
    rng = np.random.default_rng(2024)
    p_true = {"a": 0.6, "b": 0.85}
    sizes = {"a": 150, "b": 80}
    true_mean = np.mean(list(p_true.values()))
    repeats, hits = 250, 0
    for r in range(repeats):
        strata = {k: (rng.random(sizes[k]) < p_true[k]).astype(float) for k in p_true}
        res = bootstrap_statistic(strata, _row_mean, n_boot=400, seed=r)
        hits += res.mean_interval[0] <= true_mean <= res.mean_interval[1]
    assert 0.90 <= hits / repeats <= 0.99


def test_bootstrap_lower_confidence_gives_narrower_interval() -> None:
    d0, d1, h, subset = _twoafc_data()
    wide = bootstrap_twoafc(d0, d1, h, subset, n_boot=400, confidence=0.95)
    narrow = bootstrap_twoafc(d0, d1, h, subset, n_boot=400, confidence=0.5)
    assert np.diff(narrow.mean_interval)[0] < np.diff(wide.mean_interval)[0]


def test_bootstrap_statistic_supports_multi_column_strata() -> None:
    # Columns (x, y): the statistic is the mean of x - y; resampling must keep rows together.
    x = np.arange(50.0)
    values = np.stack([x, x - 2.0], axis=1)
    res = bootstrap_statistic(
        {"s": values}, lambda v: (v[..., 0] - v[..., 1]).mean(axis=1), n_boot=100
    )
    assert res.estimates == {"s": 2.0}
    assert res.intervals["s"] == pytest.approx((2.0, 2.0))


def test_bootstrap_jnd_estimates_equal_jnd_map() -> None:
    rng = np.random.default_rng(9)
    d = rng.random(200)
    same = (rng.random(200) < np.where(d < 0.4, 0.8, 0.2)).astype(float)
    subset = np.repeat(["x", "y"], 100)
    res = bootstrap_jnd(d, same, subset, n_boot=200)
    ref = jnd_map(d, same, subset)
    assert res.estimates == pytest.approx(ref.scores)
    assert res.mean == pytest.approx(ref.mean)
    assert res.mean_interval[0] < ref.mean < res.mean_interval[1]


def test_bootstrap_jnd_skips_resamples_without_same_pairs() -> None:
    # One positive in 10 pairs: about 35% of resamples miss it and have no AP; they are skipped.
    d = np.arange(10.0)
    same = np.r_[1.0, np.zeros(9)]
    res = bootstrap_jnd(d, same, n_boot=200)
    assert res.intervals["all"] == (1.0, 1.0)


def test_percentile_interval_ignores_nan_and_handles_all_nan() -> None:
    low, high = percentile_interval(np.r_[np.arange(101.0), np.nan], 0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))
    assert np.isnan(percentile_interval([np.nan, np.nan])).all()


def test_bootstrap_rejects_too_few_resamples() -> None:
    with pytest.raises(ValueError, match=r"n_boot=10 is too small.*at least 100"):
        bootstrap_twoafc([0.1, 0.2], [0.2, 0.1], [0.5, 0.5], n_boot=10)


def test_bootstrap_rejects_confidence_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"confidence=95 must lie in \(0, 1\)"):
        bootstrap_twoafc([0.1, 0.2], [0.2, 0.1], [0.5, 0.5], confidence=95)


def test_bootstrap_rejects_single_sample_subset() -> None:
    with pytest.raises(ValueError, match=r"stratum 'b' has 1 sample\(s\).*at least 2"):
        bootstrap_twoafc([0.1, 0.2, 0.3], [0.2, 0.1, 0.1], [0.5, 0.5, 0.5], ["a", "a", "b"])


def test_bootstrap_rejects_non_integer_seed() -> None:
    with pytest.raises(ValueError, match=r"seed must be an integer or None, got 1.5"):
        bootstrap_twoafc([0.1, 0.2], [0.2, 0.1], [0.5, 0.5], seed=1.5)

"""Tests for iqa_bench.stats.significance: paired sign-flip tests and Holm correction."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from iqa_bench.stats import (
    holm,
    paired_permutation_test,
    significance_matrix,
    twoafc_credit,
    twoafc_scores,
)


def _credits(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 6, n) / 5.0


def test_identical_metrics_are_not_significantly_different() -> None:
    c = _credits(500, 0)
    res = paired_permutation_test(c, c.copy(), n_perm=500)
    assert res.difference == 0.0
    assert res.p_value == 1.0


def test_clearly_better_metric_gets_smallest_possible_p() -> None:
    good = _credits(400, 1)
    bad = np.clip(good - 0.4, 0.0, 1.0)
    res = paired_permutation_test(good, bad, n_perm=999)
    assert res.difference > 0.2
    assert res.p_value == pytest.approx(1 / 1000)
    assert not res.exact


def test_permutation_p_value_is_two_sided() -> None:
    good, bad = _credits(400, 1), _credits(400, 2)
    ab = paired_permutation_test(good, bad, n_perm=500, seed=5)
    ba = paired_permutation_test(bad, good, n_perm=500, seed=5)
    assert ab.p_value == ba.p_value
    assert ab.difference == pytest.approx(-ba.difference)


def test_exact_p_value_hand_computed() -> None:
    # Differences [1, 0, 0, 1] (mean 0.5): of the 16 sign patterns, the 8 that keep samples 0
    # and 3 with equal signs give |mean| = 0.5, the others 0.
    res = paired_permutation_test([1, 1, 0, 1], [0, 1, 0, 0])
    assert res.exact and res.n_perm == 16
    assert res.difference == pytest.approx(0.5)
    assert res.p_value == pytest.approx(0.5)


def test_exact_test_matches_scipy_permutation_test_with_subsets() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 6, 11) / 5.0, rng.integers(0, 6, 11) / 5.0
    subset = np.array(list("xxxxxxxyyyy"))

    def mean_over_subsets(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        diff = x - y
        return (diff[..., subset == "x"].mean(axis=-1) + diff[..., subset == "y"].mean(axis=-1)) / 2

    ref = scipy.stats.permutation_test(
        (a, b), mean_over_subsets, permutation_type="samples", vectorized=True, n_resamples=5000
    )
    res = paired_permutation_test(a, b, subset, n_perm=5000)
    assert res.exact
    assert res.difference == pytest.approx(ref.statistic, abs=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_random_permutation_p_approximates_exact_p() -> None:
    a, b = _credits(14, 6), _credits(14, 7)
    exact = paired_permutation_test(a, b, n_perm=2**14)
    sampled = paired_permutation_test(a, b, n_perm=4000, seed=1)
    assert exact.exact and not sampled.exact
    assert sampled.p_value == pytest.approx(exact.p_value, abs=0.03)


def test_permutation_statistic_is_mean_over_subsets() -> None:
    rng = np.random.default_rng(8)
    d0, d1, h = rng.random(90), rng.random(90), rng.random(90)
    subset = np.r_[["a"] * 20, ["b"] * 70]
    other = d1 + 0.3 * rng.standard_normal(90)
    ca, cb = twoafc_credit(d0, d1, h), twoafc_credit(d0, other, h)
    res = paired_permutation_test(ca, cb, subset, n_perm=200)
    expected = twoafc_scores(d0, d1, h, subset).mean - twoafc_scores(d0, other, h, subset).mean
    assert res.difference == pytest.approx(expected, abs=1e-12)


def test_holm_hand_computed_example() -> None:
    # Sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06.
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_holm_clips_to_one_and_keeps_order_monotone() -> None:
    p = np.array([0.5, 0.2, 0.9, 0.01])
    adjusted = holm(p)
    assert adjusted.max() <= 1.0
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p)


def test_holm_rejects_nan() -> None:
    with pytest.raises(ValueError, match=r"pvalues has 1 NaN or infinite value"):
        holm([0.1, np.nan])


def test_significance_matrix_entries_equal_pairwise_tests() -> None:
    credits = {"alex": _credits(300, 1), "vgg": _credits(300, 2), "ssim": _credits(300, 3)}
    subset = np.repeat(["cnn", "trad"], 150)
    m = significance_matrix(credits, subset, n_perm=300, seed=9)
    assert m.names == ("alex", "vgg", "ssim")
    assert np.isnan(np.diag(m.p_value)).all() and np.isnan(np.diag(m.p_holm)).all()
    np.testing.assert_allclose(m.difference, -m.difference.T)
    for i, a in enumerate(m.names):
        for j, b in enumerate(m.names):
            if i != j:
                pair = paired_permutation_test(credits[a], credits[b], subset, n_perm=300, seed=9)
                assert m.p_value[i, j] == pytest.approx(pair.p_value)
                assert m.difference[i, j] == pytest.approx(pair.difference)
    upper = m.p_value[np.triu_indices(3, 1)]
    np.testing.assert_allclose(m.p_holm[np.triu_indices(3, 1)], holm(upper))


def test_significance_matrix_flags_only_the_real_difference() -> None:
    base = _credits(400, 1)
    credits = {"a": base, "a_copy": base.copy(), "worse": np.clip(base - 0.4, 0, 1)}
    m = significance_matrix(credits, n_perm=300)
    assert m.significant().tolist() == [
        [False, False, True],
        [False, False, True],
        [True, True, False],
    ]
    assert m.scores["a"] == pytest.approx(base.mean())


def test_significance_matrix_needs_two_metrics() -> None:
    with pytest.raises(ValueError, match=r"credits has 1 metric\(s\).*at least 2"):
        significance_matrix({"a": [1.0, 0.0]})


def test_paired_test_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match=r"different lengths \(credits\['a'\]=2, credits\['b'\]=3"):
        paired_permutation_test([1.0, 0.0], [1.0, 0.0, 1.0])


def test_paired_test_rejects_credits_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"credits\['a'\] has 1 value\(s\) outside \[0, 1\]"):
        paired_permutation_test([1.5, 0.0], [1.0, 0.0])


def test_paired_test_rejects_too_few_permutations() -> None:
    with pytest.raises(ValueError, match=r"n_perm=20 is too small"):
        paired_permutation_test([1.0, 0.0], [1.0, 0.0], n_perm=20)

"""Tests for iqa_bench.stats.twoafc: credit, per-subset scores, human ceiling, parity with LPIPS."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

from iqa_bench.stats import (
    human_ceiling,
    preference_correlation,
    twoafc_credit,
    twoafc_scores,
)


def test_twoafc_tie_gets_half_credit() -> None:
    credit = twoafc_credit([0.3, 0.3], [0.3, 0.3], [0.0, 0.9])
    assert credit.tolist() == [0.5, 0.5]


def test_twoafc_credit_is_fraction_of_judges_agreeing() -> None:
    # d0 < d1: metric picks p0, agreeing with the 1 - h who preferred p0, and vice versa.
    credit = twoafc_credit([0.1, 0.5, 0.2], [0.4, 0.2, 0.9], [0.2, 0.6, 1.0])
    np.testing.assert_allclose(credit, [0.8, 0.6, 0.0])


def test_twoafc_accepts_nchw_shaped_distances() -> None:
    d0 = np.array([0.1, 0.5, 0.2]).reshape(3, 1, 1, 1)
    d1 = np.array([0.4, 0.2, 0.9]).reshape(3, 1, 1, 1)
    np.testing.assert_allclose(twoafc_credit(d0, d1, [0.2, 0.6, 1.0]), [0.8, 0.6, 0.0])


def test_twoafc_orders_infinite_distances() -> None:
    credit = twoafc_credit([-np.inf, 1.0], [0.0, np.inf], [0.25, 0.25])
    np.testing.assert_allclose(credit, [0.75, 0.75])


def test_twoafc_mean_is_plain_mean_over_subsets_not_pooled() -> None:
    # Subset "big" has 3 correct samples, "small" 1 wrong one: pooled 0.75, mean over subsets 0.5.
    d0 = [0.1, 0.1, 0.1, 0.9]
    d1 = [0.5, 0.5, 0.5, 0.5]
    h = [0.0, 0.0, 0.0, 0.0]
    res = twoafc_scores(d0, d1, h, ["big", "big", "big", "small"])
    assert res.scores == {"big": 1.0, "small": 0.0}
    assert res.n == {"big": 3, "small": 1}
    assert res.mean == pytest.approx(0.5)
    assert res.pooled == pytest.approx(0.75)


def test_twoafc_subsets_follow_first_appearance() -> None:
    res = twoafc_scores([1, 1, 1], [2, 2, 2], [0, 0, 0], ["z", "a", "z"])
    assert list(res.scores) == ["z", "a"]


def test_twoafc_subset_order_reorders_result() -> None:
    res = twoafc_scores([1, 1, 1], [2, 2, 2], [0, 0, 0], ["z", "a", "z"], subset_order=["a", "z"])
    assert list(res.scores) == ["a", "z"]
    assert list(res.n) == ["a", "z"]


def test_twoafc_subset_order_must_list_every_subset() -> None:
    with pytest.raises(ValueError, match=r"subset_order=\['a'\] must list each subset"):
        twoafc_scores([1, 1], [2, 2], [0, 0], ["z", "a"], subset_order=["a"])


def test_twoafc_without_subsets_uses_single_all_subset() -> None:
    res = twoafc_scores([1, 3], [2, 2], [0.0, 0.0])
    assert res.scores == {"all": 0.5}
    assert res.mean == res.pooled == 0.5


def test_twoafc_rejects_nan_distance() -> None:
    with pytest.raises(ValueError, match=r"d1 has 1 NaN value\(s\) \(first at index 1\)"):
        twoafc_credit([0.1, 0.2], [0.3, np.nan], [0.5, 0.5])


def test_twoafc_rejects_judgment_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"h has 1 value\(s\) outside \[0, 1\].*divide counts"):
        twoafc_credit([0.1, 0.2], [0.3, 0.1], [0.5, 3.0])


def test_twoafc_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match=r"different lengths \(d0=2, d1=2, h=3\)"):
        twoafc_credit([0.1, 0.2], [0.3, 0.1], [0.5, 0.5, 0.5])


def test_twoafc_rejects_several_values_per_sample() -> None:
    with pytest.raises(ValueError, match=r"d0 has shape \(2, 2\); expected one value per sample"):
        twoafc_credit(np.zeros((2, 2)), np.zeros(2), [0.5, 0.5])


def test_twoafc_rejects_empty_input() -> None:
    with pytest.raises(ValueError, match=r"d0 has shape \(0,\); pass at least one value"):
        twoafc_credit([], [], [])


def test_twoafc_rejects_subset_labels_of_wrong_length() -> None:
    with pytest.raises(ValueError, match=r"subset has shape \(1,\) but there are 2 samples"):
        twoafc_scores([1, 1], [2, 2], [0, 0], ["a"])


def test_twoafc_rejects_non_numeric_distances() -> None:
    with pytest.raises(ValueError, match=r"d0 must be numeric"):
        twoafc_credit(["near", "far"], [0.1, 0.2], [0.5, 0.5])


def test_human_ceiling_is_mean_agreement_per_subset() -> None:
    # h=0 -> 1, h=0.5 -> 0.5, h=0.2 -> 0.04 + 0.64 = 0.68.
    res = human_ceiling([0.0, 0.5, 0.2], ["a", "a", "b"])
    assert res.scores == pytest.approx({"a": 0.75, "b": 0.68})
    assert res.mean == pytest.approx((0.75 + 0.68) / 2)
    assert res.pooled == pytest.approx((1.0 + 0.5 + 0.68) / 3)


def test_oracle_metric_following_majority_scores_at_least_ceiling() -> None:
    # Per sample max(h, 1-h) >= h^2 + (1-h)^2, so an oracle choosing the majority beats the
    # ceiling; a wrong ceiling formula (e.g. using h alone) breaks this on random data.
    h = np.random.default_rng(3).random(500)
    oracle = twoafc_scores(np.where(h < 0.5, 0.0, 1.0), np.full(500, 0.5), h)
    assert oracle.mean >= human_ceiling(h).mean


def test_preference_correlation_matches_scipy_with_sign_kept() -> None:
    rng = np.random.default_rng(0)
    d0, d1 = rng.random(40), rng.random(40)
    h = np.clip(0.5 + (d0 - d1) + 0.1 * rng.standard_normal(40), 0, 1)
    res = preference_correlation(d0, d1, h)
    assert res.pearson == pytest.approx(scipy.stats.pearsonr(d0 - d1, h).statistic, abs=1e-12)
    assert res.spearman == pytest.approx(scipy.stats.spearmanr(d0 - d1, h).statistic, abs=1e-12)
    assert res.pearson > 0.5
    flipped = preference_correlation(d1, d0, h)
    assert flipped.pearson == pytest.approx(-res.pearson)
    assert flipped.spearman == pytest.approx(-res.spearman)


def test_preference_correlation_is_nan_for_constant_judgments() -> None:
    res = preference_correlation([0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.5, 0.5, 0.5])
    assert np.isnan(res.pearson) and np.isnan(res.spearman)
    assert res.n == 3


def test_stats_package_never_imports_torch() -> None:
    code = "import sys, iqa_bench.stats; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---------------------------------------------------------------------------
# Parity with the reference implementation (lpips.trainer.score_2afc_dataset).
# ---------------------------------------------------------------------------


class _FakeLoader:
    """Stands in for lpips' data loader: ``load_data()`` yields batches of tensors."""

    def __init__(self, batches: list[dict]) -> None:
        self._batches = batches

    def load_data(self) -> list[dict]:
        return self._batches


def test_twoafc_matches_lpips_reference_pooled_score() -> None:
    torch = pytest.importorskip("torch")
    trainer = pytest.importorskip("lpips.trainer")
    rng = np.random.default_rng(7)
    n = 53
    d0, d1 = rng.random(n), rng.random(n)
    d1[::9] = d0[::9]  # ties, to cover the half-credit branch on both sides
    h = rng.integers(0, 6, n) / 5.0

    # Each patch tensor carries a code (2i for p0, 2i + 1 for p1) that func maps to a distance.
    table = np.empty(2 * n)
    table[0::2], table[1::2] = d0, d1
    batches = []
    for start in range(0, n, 16):
        idx = torch.arange(start, min(n, start + 16), dtype=torch.float64).view(-1, 1, 1, 1)
        batches.append(
            {
                "ref": idx,
                "p0": 2 * idx,
                "p1": 2 * idx + 1,
                "judge": torch.from_numpy(h[start : start + 16]).view(-1, 1, 1, 1),
            }
        )

    def func(ref: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(table[patch.flatten().long().numpy()]).view(-1, 1, 1, 1)

    ref_score, ref_info = trainer.score_2afc_dataset(_FakeLoader(batches), func)
    ours = twoafc_scores(d0, d1, h, ["val"] * n)
    assert ours.pooled == pytest.approx(ref_score, abs=1e-9)
    assert ours.mean == pytest.approx(ref_score, abs=1e-9)
    np.testing.assert_allclose(twoafc_credit(d0, d1, h), ref_info["scores"], atol=1e-12)

"""Paired significance tests between metrics scored on the same 2AFC samples.

The statistic is the difference in 2AFC score (mean over subsets of the per-subset mean credit)
between two metrics. Under the null hypothesis the two metrics are exchangeable on every
sample, so each per-sample credit difference is equally likely to have either sign: the null
distribution comes from random sign flips. Because the statistic weights sample ``i`` of
subset ``k`` by ``1 / (K n_k)``, flipping signs sample by sample is automatically stratified.

When ``2**N <= n_perm`` every sign pattern is enumerated and the p-value is exact; otherwise
``n_perm`` random patterns give ``p = (count + 1) / (n_perm + 1)``, which is never 0.

Example:
    >>> a, b = [1.0] * 30, [0.0] * 30
    >>> paired_permutation_test(a, b, n_perm=999).p_value
    0.001
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import _BLOCK_ENTRIES, _check_count, _check_seed
from .twoafc import SubsetLabels, _as_fraction, _check_lengths, _group_indices

__all__ = [
    "PermutationTestResult",
    "SignificanceMatrix",
    "holm",
    "paired_permutation_test",
    "significance_matrix",
]

# Relative slack when comparing null statistics with the observed one, so that sign patterns
# equivalent to the observed one are not lost to rounding in the matrix product.
_REL_TOL = 1e-9
_CREDIT_HINT = "credits are per-sample 2AFC credits in [0, 1]; compute them with twoafc_credit."


@dataclass(frozen=True)
class PermutationTestResult:
    """Outcome of a paired sign-flip permutation test.

    Attributes:
        difference: Score of ``a`` minus score of ``b`` (mean over subsets of mean credit).
        p_value: Two-sided p-value, in (0, 1].
        n_perm: Number of sign patterns used (``2**N`` when exact).
        exact: Whether every sign pattern was enumerated.
    """

    difference: float
    p_value: float
    n_perm: int
    exact: bool


@dataclass(frozen=True, eq=False)
class SignificanceMatrix:
    """Pairwise comparison of several metrics (arrays indexed like ``names``).

    Attributes:
        names: Metric names, in input order.
        scores: 2AFC score (mean over subsets) per metric.
        difference: ``difference[i, j] = score[i] - score[j]``; antisymmetric, zero diagonal.
        p_value: Raw two-sided p-values; symmetric, NaN diagonal.
        p_holm: Holm-adjusted p-values across all unordered pairs; symmetric, NaN diagonal.
        n_perm: Number of sign patterns used per pair.
        exact: Whether the p-values are exact (every sign pattern enumerated).
    """

    names: tuple[str, ...]
    scores: dict[str, float]
    difference: np.ndarray
    p_value: np.ndarray
    p_holm: np.ndarray
    n_perm: int
    exact: bool

    def significant(self, alpha: float = 0.05) -> np.ndarray:
        """Boolean matrix of pairs whose Holm-adjusted p-value is below ``alpha``.

        Example:
            >>> m = significance_matrix({"a": [1.0] * 20, "b": [0.0] * 20}, n_perm=200)
            >>> m.significant().tolist()
            [[False, True], [True, False]]
        """
        with np.errstate(invalid="ignore"):
            return np.nan_to_num(self.p_holm, nan=1.0) < alpha


def _subset_weights(subset: SubsetLabels, n: int) -> np.ndarray:
    """Weight of each sample in the mean-over-subsets score: ``1 / (K n_k)``."""
    _, groups = _group_indices(subset, n)
    weights = np.empty(n)
    for idx in groups:
        weights[idx] = 1.0 / (len(groups) * idx.size)
    return weights


def _sign_flip_pvalues(
    terms: np.ndarray, n_perm: int, seed: int | None
) -> tuple[np.ndarray, int, bool]:
    """Two-sided sign-flip p-values for the column sums of ``terms`` (shape (N, P)).

    All columns share the same sign patterns, so one matrix product serves every pair.
    """
    n = terms.shape[0]
    observed = terms.sum(axis=0)
    threshold = np.abs(observed) - _REL_TOL * np.abs(terms).sum(axis=0)
    exact = n < 63 and (1 << n) <= n_perm
    count = np.zeros(terms.shape[1], dtype=np.int64)
    if exact:
        total = 1 << n
        patterns = (np.arange(total)[:, None] >> np.arange(n)) & 1
        blocks = [patterns[i : i + 4096] for i in range(0, total, 4096)]
    else:
        total = n_perm
        rng = np.random.default_rng(seed)
        rows = max(1, _BLOCK_ENTRIES // n)
        blocks = (
            np.unpackbits(
                rng.integers(0, 256, size=(min(rows, n_perm - i), (n + 7) // 8), dtype=np.uint8),
                axis=1,
                count=n,
            )
            for i in range(0, n_perm, rows)
        )
    for flips in blocks:
        # A flipped sample changes the sum by twice its term, so null = observed - 2 (flips @ t).
        null = observed - 2.0 * (flips.astype(np.float64) @ terms)
        count += np.sum(np.abs(null) >= threshold, axis=0)
    p = count / total if exact else (count + 1) / (total + 1)
    return np.minimum(p, 1.0), total, exact


def paired_permutation_test(
    credits_a: ArrayLike,
    credits_b: ArrayLike,
    subset: SubsetLabels = None,
    *,
    n_perm: int = 10000,
    seed: int | None = 0,
) -> PermutationTestResult:
    """Paired sign-flip permutation test of the 2AFC score difference of two metrics.

    Args:
        credits_a: Per-sample 2AFC credit of metric ``a`` (see ``twoafc_credit``).
        credits_b: Per-sample credit of metric ``b`` on the same samples, same order.
        subset: One label per sample so the statistic is the mean over subsets, or ``None``.
        n_perm: Number of random sign patterns (at least 100); if ``2**N <= n_perm`` all
            patterns are enumerated instead and the test is exact.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        A :class:`PermutationTestResult`.

    Raises:
        ValueError: On credits outside [0, 1], NaN, mismatched lengths or bad settings.

    Example:
        >>> res = paired_permutation_test([1, 1, 0, 1], [0, 1, 0, 0])
        >>> res.difference, res.p_value, res.exact
        (0.5, 0.5, True)
    """
    m = significance_matrix({"a": credits_a, "b": credits_b}, subset, n_perm=n_perm, seed=seed)
    return PermutationTestResult(
        difference=float(m.difference[0, 1]),
        p_value=float(m.p_value[0, 1]),
        n_perm=m.n_perm,
        exact=m.exact,
    )


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni step-down adjustment of a family of p-values.

    The i-th smallest of m p-values is multiplied by ``m - i`` (i from 0), a running maximum
    keeps the adjusted values monotone, and they are clipped to 1.

    Args:
        pvalues: Raw p-values in [0, 1], shape (m,).

    Returns:
        Adjusted p-values in the input order.

    Raises:
        ValueError: On NaN or values outside [0, 1].

    Example:
        >>> holm([0.01, 0.04, 0.03, 0.005]).round(4).tolist()
        [0.03, 0.06, 0.06, 0.02]
    """
    raw = np.asarray(pvalues, dtype=np.float64)
    if raw.ndim != 1:
        raise ValueError(f"pvalues has shape {raw.shape}; pass a 1-D array of p-values.")
    if raw.size == 0:
        return raw.copy()
    p = _as_fraction("pvalues", raw, "pass raw p-values, not scores or log-p.")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def significance_matrix(
    credits: Mapping[str, ArrayLike],
    subset: SubsetLabels = None,
    *,
    n_perm: int = 10000,
    seed: int | None = 0,
) -> SignificanceMatrix:
    """Pairwise paired permutation tests between metrics, Holm-corrected over all pairs.

    Every pair uses the same sign patterns (same ``seed``), so each entry equals
    :func:`paired_permutation_test` on that pair.

    Args:
        credits: Per-sample 2AFC credit per metric name, all on the same samples in the
            same order.
        subset: One label per sample so scores are means over subsets, or ``None``.
        n_perm: Number of random sign patterns (at least 100), or exact if ``2**N <= n_perm``.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        A :class:`SignificanceMatrix`.

    Raises:
        ValueError: On fewer than 2 metrics, invalid credits, mismatched lengths or bad
            settings.

    Example:
        >>> m = significance_matrix({"a": [1, 0] * 10, "b": [1, 0] * 10}, n_perm=200)
        >>> float(m.difference[0, 1]), float(m.p_value[0, 1])
        (0.0, 1.0)
    """
    _check_count("n_perm", n_perm)
    _check_seed(seed)
    if len(credits) < 2:
        raise ValueError(
            f"credits has {len(credits)} metric(s); a significance matrix needs at least 2."
        )
    names = tuple(str(name) for name in credits)
    values = {
        name: _as_fraction(f"credits[{name!r}]", c, _CREDIT_HINT)
        for name, c in zip(names, credits.values(), strict=True)
    }
    n = _check_lengths(**{f"credits[{name!r}]": v for name, v in values.items()})
    weights = _subset_weights(subset, n)
    scores = {name: float(weights @ v) for name, v in values.items()}

    pairs = list(combinations(range(len(names)), 2))
    terms = np.stack([weights * (values[names[i]] - values[names[j]]) for i, j in pairs], axis=1)
    raw_p, used, exact = _sign_flip_pvalues(terms, n_perm, seed)
    adjusted = holm(raw_p)

    k = len(names)
    score_vec = np.array([scores[name] for name in names])
    p_value, p_holm = np.full((k, k), np.nan), np.full((k, k), np.nan)
    for (i, j), p, q in zip(pairs, raw_p, adjusted, strict=True):
        p_value[i, j] = p_value[j, i] = p
        p_holm[i, j] = p_holm[j, i] = q
    return SignificanceMatrix(
        names=names,
        scores=scores,
        difference=score_vec[:, None] - score_vec[None, :],
        p_value=p_value,
        p_holm=p_holm,
        n_perm=int(used),
        exact=exact,
    )

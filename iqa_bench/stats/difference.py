"""Bootstrap of a statistic and of its difference between two predictors of the same judgments.

Used to compare two runs (two package versions, devices or dtypes). For JND and MOS data the
statistic (AP, Spearman's rho) is not a mean of per-sample values, so there is no per-sample
credit to permute (:func:`bootstrap_of`, :func:`bootstrap_difference`); a mean of per-sample
credits over subsets (2AFC) gets :func:`mean_difference_interval`. A *paired* bootstrap
resamples samples jointly for both predictors (within each subset), so the interval of
``stat(a) - stat(b)`` accounts for their correlation. Two runs on different samples are
bootstrapped independently and their replicates subtracted.

Statistics, by name (all take per-sample predictions and judgments):

- ``jnd_ap``: JND average precision; predictions are distances, judgments the "same" fraction.
- ``srcc``: Spearman's rho; predictions are quality-like (higher = better), judgments MOS
  oriented so that higher = better.

Example:
    >>> a, b, same = [0.1, 0.2, 0.3, 0.4] * 5, [0.4, 0.1, 0.3, 0.2] * 5, [1, 1, 0, 0] * 5
    >>> diff = bootstrap_difference("jnd_ap", a, b, same, n_boot=200)
    >>> round(diff.mean, 3), diff.mean_interval[0] > 0
    (0.25, True)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import BootstrapResult, _row_mean, bootstrap_columns, percentile_interval
from .correlation import _srcc_rows
from .jnd import _jnd_ap_rows
from .twoafc import SubsetLabels, _as_fraction, _as_vector, _check_lengths

__all__ = [
    "ROW_STATISTICS",
    "bootstrap_difference",
    "bootstrap_of",
    "mean_difference_interval",
    "unpaired_difference",
]

#: name -> vectorised statistic of (B, n) predictions and (B, n) judgments, returning (B,).
ROW_STATISTICS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "jnd_ap": _jnd_ap_rows,
    "srcc": _srcc_rows,
}


def _statistic(name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if name not in ROW_STATISTICS:
        raise ValueError(f"statistic: {name!r} is not one of {', '.join(ROW_STATISTICS)}.")
    return ROW_STATISTICS[name]


def _judgment(statistic: str, values: ArrayLike) -> np.ndarray:
    # JND judgments are fractions of people; MOS may be on any scale.
    return (
        _as_fraction("judgment", values)
        if statistic == "jnd_ap"
        else _as_vector("judgment", values)
    )


def bootstrap_of(
    statistic: str,
    prediction: ArrayLike,
    judgment: ArrayLike,
    subset: SubsetLabels = None,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> BootstrapResult:
    """Stratified bootstrap of one predictor's statistic per subset and its mean over subsets.

    Args:
        statistic: A name in :data:`ROW_STATISTICS`.
        prediction: Per-sample predictions (see the module docstring for their orientation).
        judgment: Per-sample human judgments.
        subset: One label per sample, or ``None`` for a single subset ``"all"``.
        n_boot: Number of resamples (at least 100).
        confidence: Nominal coverage of the intervals.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        A :class:`BootstrapResult` with ``mean_replicates`` set.

    Example:
        >>> res = bootstrap_of("srcc", [1, 2, 3, 4] * 5, [1, 2, 3, 4] * 5, n_boot=100)
        >>> res.mean
        1.0
    """
    row = _statistic(statistic)
    pred, judg = _as_vector("prediction", prediction), _judgment(statistic, judgment)
    _check_lengths(prediction=pred, judgment=judg)
    return bootstrap_columns(
        lambda x: row(x[..., 0], x[..., 1]),
        [pred, judg],
        subset,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )


def bootstrap_difference(
    statistic: str,
    prediction_a: ArrayLike,
    prediction_b: ArrayLike,
    judgment: ArrayLike,
    subset: SubsetLabels = None,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> BootstrapResult:
    """Paired stratified bootstrap of ``statistic(a) - statistic(b)`` on the same samples.

    Args:
        statistic: A name in :data:`ROW_STATISTICS`.
        prediction_a: Per-sample predictions of A.
        prediction_b: Predictions of B for the same samples, in the same order.
        judgment: The shared human judgments.
        subset: One label per sample, or ``None`` for a single subset ``"all"``.
        n_boot: Number of resamples (at least 100).
        confidence: Nominal coverage of the intervals.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        A :class:`BootstrapResult` of the differences (per subset, and of the mean over subsets).

    Example:
        >>> a, b, same = [0.1, 0.2, 0.3, 0.4] * 5, [0.4, 0.1, 0.3, 0.2] * 5, [1, 1, 0, 0] * 5
        >>> round(bootstrap_difference("jnd_ap", a, b, same, n_boot=200).mean, 3)
        0.25
    """
    row = _statistic(statistic)
    pa, pb = _as_vector("prediction_a", prediction_a), _as_vector("prediction_b", prediction_b)
    judg = _judgment(statistic, judgment)
    _check_lengths(prediction_a=pa, prediction_b=pb, judgment=judg)

    def diff(x: np.ndarray) -> np.ndarray:
        return row(x[..., 0], x[..., 2]) - row(x[..., 1], x[..., 2])

    return bootstrap_columns(
        diff, [pa, pb, judg], subset, n_boot=n_boot, confidence=confidence, seed=seed
    )


def unpaired_difference(
    a: BootstrapResult, b: BootstrapResult, confidence: float = 0.95
) -> tuple[float, tuple[float, float]]:
    """``a.mean - b.mean`` and the percentile interval of independent replicates' difference.

    Both results need ``mean_replicates`` of the same length, drawn with different seeds.

    Example:
        >>> ra = bootstrap_of("srcc", [1, 2, 3, 4] * 5, [1, 2, 3, 4] * 5, n_boot=100, seed=1)
        >>> rb = bootstrap_of("srcc", [4, 3, 2, 1] * 5, [1, 2, 3, 4] * 5, n_boot=100, seed=2)
        >>> unpaired_difference(ra, rb)[0]
        2.0
    """
    if a.mean_replicates is None or b.mean_replicates is None:
        raise ValueError("a and b need mean_replicates; make them with bootstrap_of.")
    if a.mean_replicates.shape != b.mean_replicates.shape:
        raise ValueError(
            f"a and b have {a.mean_replicates.size} and {b.mean_replicates.size} replicates; "
            "bootstrap both with the same n_boot."
        )
    return a.mean - b.mean, percentile_interval(a.mean_replicates - b.mean_replicates, confidence)


def _subset_means(
    credit: np.ndarray, subset: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_boot,) resampled mean over subsets of ``credit``, resampled within subsets."""
    reps = bootstrap_columns(_row_mean, [credit], subset, n_boot=n_boot, seed=rng).replicates
    # Summed subset by subset rather than ``mean_replicates`` (a row mean): the two differ in
    # the last bits, and the intervals `iqa-bench compare` prints are pinned to this sum.
    total = np.zeros(n_boot)
    for column in reps.T:
        total += column / reps.shape[1]
    return total


def mean_difference_interval(
    credit_a: ArrayLike,
    credit_b: ArrayLike,
    subset_a: SubsetLabels,
    subset_b: SubsetLabels | None = None,
    *,
    paired: bool,
    n_boot: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Bootstrap interval of the difference of two means over subsets of per-sample credits.

    Paired: ``credit_a[i]`` and ``credit_b[i]`` belong to the same sample (labels
    ``subset_a``), and the per-sample differences are resampled within subsets. Unpaired: each
    run is resampled on its own (``subset_b`` labels B's samples), A's replicates first.

    Args:
        credit_a: Per-sample credits of A (e.g. 2AFC credits).
        credit_b: Per-sample credits of B.
        subset_a: Subset label of each of A's samples.
        subset_b: Subset label of each of B's samples (unpaired only).
        paired: Whether the samples are paired.
        n_boot: Number of resamples (at least 100).
        confidence: Nominal coverage.
        rng: The random stream, shared across calls so that a comparison of several metrics
            is reproducible from one seed.

    Returns:
        ``(low, high)`` of ``mean(a) - mean(b)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> lo, hi = mean_difference_interval(
        ...     [1.0, 0.0] * 20, [0.0, 0.0] * 20, ["x"] * 40, paired=True, n_boot=200, rng=rng)
        >>> bool(lo < 0.5 < hi)
        True
    """
    a, b = _as_vector("credit_a", credit_a), _as_vector("credit_b", credit_b)
    sub_a = np.asarray(subset_a)
    if paired:
        _check_lengths(credit_a=a, credit_b=b, subset_a=sub_a)
        reps = _subset_means(a - b, sub_a, n_boot, rng)
    else:
        sub_b = np.asarray(subset_b)
        _check_lengths(credit_a=a, subset_a=sub_a)
        _check_lengths(credit_b=b, subset_b=sub_b)
        reps = _subset_means(a, sub_a, n_boot, rng) - _subset_means(b, sub_b, n_boot, rng)
    return percentile_interval(reps, confidence)

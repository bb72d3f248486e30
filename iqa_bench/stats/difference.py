"""Bootstrap of a statistic and of its difference between two predictors of the same judgments.

Used to compare two runs (two package versions, devices or dtypes) on JND and MOS data, where the
statistic (AP, Spearman's rho) is not a mean of per-sample values, so there is no per-sample
credit to permute. A *paired* bootstrap resamples samples jointly for both predictors (within
each subset), so the interval of ``stat(a) - stat(b)`` accounts for their correlation. Two runs on
different samples are bootstrapped independently and their replicates subtracted.

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

from .bootstrap import BootstrapResult, bootstrap_statistic, percentile_interval
from .correlation import _srcc_rows
from .jnd import _jnd_ap_rows
from .twoafc import SubsetLabels, _as_fraction, _as_vector, _check_lengths, _group_indices

__all__ = ["ROW_STATISTICS", "bootstrap_difference", "bootstrap_of", "unpaired_difference"]

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
    n = _check_lengths(prediction=pred, judgment=judg)
    names, groups = _group_indices(subset, n)
    strata = {name: np.stack([pred[i], judg[i]], axis=1) for name, i in zip(names, groups)}
    return bootstrap_statistic(
        strata, lambda x: row(x[..., 0], x[..., 1]), n_boot=n_boot, confidence=confidence, seed=seed
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
    n = _check_lengths(prediction_a=pa, prediction_b=pb, judgment=judg)
    names, groups = _group_indices(subset, n)
    strata = {name: np.stack([pa[i], pb[i], judg[i]], axis=1) for name, i in zip(names, groups)}

    def diff(x: np.ndarray) -> np.ndarray:
        return row(x[..., 0], x[..., 2]) - row(x[..., 1], x[..., 2])

    return bootstrap_statistic(strata, diff, n_boot=n_boot, confidence=confidence, seed=seed)


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

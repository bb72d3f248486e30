"""Stratified percentile-bootstrap confidence intervals.

Samples are resampled with replacement *within* each subset (stratum), so every resample keeps
the subset sizes of the data, and the mean over subsets is recomputed per resample from the
per-subset statistics of that resample.

Resampling is vectorised: each stratum draws an index matrix of shape (resamples, n_k), in
blocks bounded to a few million entries so memory stays flat. For 2AFC the statistic is a row
mean (36k samples x 1000 resamples takes about a second). For JND every resample is re-sorted
(one ``argsort`` per row), which is O(n log n) per resample and a few times slower, still
seconds for BAPPS-sized inputs.

Results are reproducible for a given ``seed``, inputs and version of this module (the block
size is part of how random numbers are consumed).

Example:
    >>> ci = bootstrap_twoafc([0.1] * 50 + [0.3] * 50, [0.2] * 100, [0.3] * 100, seed=0)
    >>> round(ci.mean, 6), ci.mean_interval[0] < ci.mean < ci.mean_interval[1]
    (0.5, True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError
from .jnd import _check_positive, _jnd_ap_rows
from .twoafc import (
    SubsetLabels,
    _as_fraction,
    _as_vector,
    _check_lengths,
    _group_indices,
    twoafc_credit,
)

__all__ = [
    "BootstrapResult",
    "bootstrap_columns",
    "bootstrap_jnd",
    "bootstrap_statistic",
    "bootstrap_twoafc",
    "percentile_interval",
]

# Upper bound on gathered entries per block: ~32 MiB of float64 per temporary.
_BLOCK_ENTRIES = 1 << 22
MIN_RESAMPLES = 100


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimates with percentile-bootstrap intervals, per subset and for their mean.

    Attributes:
        estimates: Statistic on the full data, per subset.
        intervals: ``(low, high)`` percentile interval per subset.
        mean: Plain mean of ``estimates`` over subsets.
        mean_interval: ``(low, high)`` interval of the mean over subsets.
        n_boot: Number of resamples.
        confidence: Nominal coverage of the intervals, e.g. 0.95.
        seed: Seed given to ``numpy.random.default_rng``.
        mean_replicates: (n_boot,) mean over subsets of each resample (NaN where a subset's
            statistic is undefined), e.g. to combine two independent bootstraps.
        replicates: (n_boot, subsets) statistic of each resample per subset, columns in the
            order of ``estimates``.
    """

    estimates: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    mean: float
    mean_interval: tuple[float, float]
    n_boot: int
    confidence: float
    seed: int | None
    mean_replicates: np.ndarray | None = field(default=None, repr=False, compare=False)
    replicates: np.ndarray | None = field(default=None, repr=False, compare=False)


def _check_count(name: str, value: int) -> None:
    """Validates a resample/permutation count (shared with ``significance``)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer, got {value!r}; pass e.g. {name}=1000.")
    if value < MIN_RESAMPLES:
        raise InputError(
            f"{name}={value} is too small for a stable result; use at least "
            f"{MIN_RESAMPLES} (1000 or more for reported numbers)."
        )


def _check_seed(seed: int | None) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise InputError(f"seed must be an integer or None, got {seed!r}; pass e.g. seed=0.")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise InputError(f"confidence={confidence!r} must lie in (0, 1); pass e.g. 0.95.")


def percentile_interval(replicates: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """Central percentile interval of bootstrap replicates, ignoring NaN replicates.

    Args:
        replicates: Statistic values, one per resample. NaN marks resamples where the
            statistic is undefined (e.g. a JND resample with no "same" pair).
        confidence: Nominal coverage in (0, 1).

    Returns:
        ``(low, high)``; ``(nan, nan)`` when every replicate is NaN.

    Example:
        >>> [round(v, 6) for v in percentile_interval(np.arange(101.0), 0.9)]
        [5.0, 95.0]
    """
    _check_confidence(confidence)
    values = np.asarray(replicates, dtype=np.float64).reshape(-1)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = 1.0 - confidence
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(low), float(high))


def bootstrap_statistic(
    values_by_stratum: Mapping[str, ArrayLike],
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> BootstrapResult:
    """Stratified percentile bootstrap of any per-stratum statistic and its mean over strata.

    Every bootstrap of the package resamples through this function.

    Args:
        values_by_stratum: Per stratum, an array whose first axis indexes samples, shape
            (n_k,) or (n_k, m) for m columns (e.g. distance and judgment side by side).
        statistic: Vectorised statistic. It receives resampled data of shape
            (B, n_k, ...) and returns shape (B,): one value per resample. NaN is allowed for
            resamples where the statistic is undefined; those are left out of the interval.
        n_boot: Number of resamples (at least 100).
        confidence: Nominal coverage of the intervals.
        seed: Seed for ``numpy.random.default_rng``; ``None`` for fresh entropy; a
            ``Generator`` is drawn from as it stands (its state advances), so that several
            bootstraps can share one stream.

    Returns:
        A :class:`BootstrapResult` (``seed`` is ``None`` when a ``Generator`` was given).

    Raises:
        ValueError: On bad settings, an empty mapping, NaN values or a stratum with fewer
            than 2 samples.

    Example:
        >>> res = bootstrap_statistic({"a": [0.0, 1.0] * 20}, lambda x: x.mean(axis=1))
        >>> res.estimates["a"]
        0.5
    """
    _check_count("n_boot", n_boot)
    _check_confidence(confidence)
    shared = isinstance(seed, np.random.Generator)
    if not shared:
        _check_seed(seed)
    if len(values_by_stratum) == 0:
        raise ValueError("values_by_stratum is empty; pass at least one stratum of samples.")
    rng = np.random.default_rng(seed)
    names = [str(name) for name in values_by_stratum]
    estimates: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    replicates = np.empty((n_boot, len(names)))
    for k, (name, raw) in enumerate(values_by_stratum.items()):
        values = np.asarray(raw, dtype=np.float64)
        n = values.shape[0] if values.ndim else 0
        if n < 2:
            raise ValueError(
                f"stratum {name!r} has {n} sample(s); the bootstrap needs at least 2 per "
                "stratum, so merge it with another subset or leave it out."
            )
        if np.isnan(values).any():
            raise ValueError(f"stratum {name!r} contains NaN; drop or fix those samples first.")
        estimates[str(name)] = float(np.asarray(statistic(values[None]))[0])
        width = max(1, values.size // n)
        rows = max(1, min(n_boot, _BLOCK_ENTRIES // (n * width)))
        for start in range(0, n_boot, rows):
            stop = min(n_boot, start + rows)
            idx = rng.integers(0, n, size=(stop - start, n))
            replicates[start:stop, k] = statistic(values[idx])
        intervals[str(name)] = percentile_interval(replicates[:, k], confidence)
    # A resample of the whole benchmark is one resample of every stratum, so its mean over
    # strata is the row mean; NaN in any stratum makes that resample's mean undefined.
    means = replicates.mean(axis=1)
    return BootstrapResult(
        estimates=estimates,
        intervals=intervals,
        mean=float(np.mean(list(estimates.values()))),
        mean_interval=percentile_interval(means, confidence),
        n_boot=int(n_boot),
        confidence=float(confidence),
        seed=None if seed is None or shared else int(seed),
        mean_replicates=means,
        replicates=replicates,
    )


def _row_mean(resampled: np.ndarray) -> np.ndarray:
    return resampled.mean(axis=1)


def _row_jnd_ap(resampled: np.ndarray) -> np.ndarray:
    return _jnd_ap_rows(resampled[..., 0], resampled[..., 1])


def bootstrap_columns(
    statistic: Callable[[np.ndarray], np.ndarray],
    columns: Sequence[np.ndarray],
    subset: SubsetLabels = None,
    *,
    subset_order: Sequence[str] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> BootstrapResult:
    """:func:`bootstrap_statistic` of per-sample columns split into strata by ``subset``.

    Args:
        statistic: Vectorised statistic of resampled strata: shape (B, n_k) for one column,
            (B, n_k, len(columns)) for several; returns (B,).
        columns: Equal-length per-sample vectors (already validated).
        subset: One label per sample, or ``None`` for a single subset ``"all"``.
        subset_order: Order of the subsets in the result; defaults to first appearance.
        n_boot: Number of resamples (at least 100).
        confidence: Nominal coverage of the intervals.
        seed: As in :func:`bootstrap_statistic`.

    Example:
        >>> res = bootstrap_columns(_row_mean, [np.array([0.0, 1.0] * 20)], n_boot=100)
        >>> res.estimates
        {'all': 0.5}
    """
    names, groups = _group_indices(subset, len(columns[0]), subset_order)
    if len(columns) == 1:
        strata = {name: columns[0][idx] for name, idx in zip(names, groups, strict=True)}
    else:
        strata = {
            name: np.stack([c[idx] for c in columns], axis=1)
            for name, idx in zip(names, groups, strict=True)
        }
    return bootstrap_statistic(strata, statistic, n_boot=n_boot, confidence=confidence, seed=seed)


def bootstrap_twoafc(
    d0: ArrayLike,
    d1: ArrayLike,
    h: ArrayLike,
    subset: SubsetLabels = None,
    *,
    subset_order: Sequence[str] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> BootstrapResult:
    """Bootstrap intervals for the per-subset 2AFC scores and their mean over subsets.

    Args:
        d0: Distances between the reference and ``p0``.
        d1: Distances between the reference and ``p1``.
        h: Fraction of people who preferred ``p1``, in [0, 1].
        subset: One label per sample, or ``None`` for a single subset ``"all"``.
        subset_order: Order of the subsets in the result; defaults to first appearance.
        n_boot: Number of resamples (at least 100).
        confidence: Nominal coverage of the intervals.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        A :class:`BootstrapResult` whose estimates equal ``twoafc_scores(...).scores``.

    Example:
        >>> res = bootstrap_twoafc([0.1, 0.3] * 10, [0.2] * 20, [0.0] * 20, ["a", "b"] * 10)
        >>> res.estimates, res.intervals["a"]
        ({'a': 1.0, 'b': 0.0}, (1.0, 1.0))
    """
    return bootstrap_columns(
        _row_mean,
        [twoafc_credit(d0, d1, h)],
        subset,
        subset_order=subset_order,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )


def bootstrap_jnd(
    d: ArrayLike,
    same: ArrayLike,
    subset: SubsetLabels = None,
    *,
    subset_order: Sequence[str] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> BootstrapResult:
    """Bootstrap intervals for the per-subset JND AP and the mAP over subsets.

    Each resample is re-ranked by distance (ties broken by resampled order). A resample in
    which no pair was judged "same" has no AP; it is left out of that subset's interval and of
    the mAP interval. This needs a sort per resample, so it is slower than the 2AFC bootstrap.

    Args:
        d: Distance between the two patches of each pair, shape (N,) or (N, 1, 1, 1).
        same: Fraction of people who said the patches look the same, in [0, 1].
        subset: One label per sample, or ``None`` for a single subset ``"all"``.
        subset_order: Order of the subsets in the result; defaults to first appearance.
        n_boot: Number of resamples (at least 100).
        confidence: Nominal coverage of the intervals.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        A :class:`BootstrapResult` whose estimates equal ``jnd_map(...).scores``.

    Example:
        >>> res = bootstrap_jnd([0.1, 0.2, 0.3, 0.4] * 5, [1, 1, 0, 0] * 5, n_boot=200)
        >>> res.estimates, res.intervals["all"]
        ({'all': 1.0}, (1.0, 1.0))
    """
    dv, sv = _as_vector("d", d), _as_fraction("same", same)
    n = _check_lengths(d=dv, same=sv)
    names, groups = _group_indices(subset, n, subset_order)
    for name, idx in zip(names, groups, strict=True):
        _check_positive(sv[idx], f" in subset {name!r}")
    return bootstrap_columns(
        _row_jnd_ap,
        [dv, sv],
        subset,
        subset_order=subset_order,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )

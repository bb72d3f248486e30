"""SRCC, KRCC and PLCC per distortion type, with vectorized percentile-bootstrap intervals.

Per-type numbers follow the usual practice of the TID2013 / VQEG analyses: the logistic map is
fitted once on the whole dataset (see :func:`~.correlation.correlations`) and each type's PLCC is
Pearson's r of the *mapped* predictions against the (oriented) MOS of that type, signed by the
direction of the global map. SRCC and KRCC do not depend on the map. Intervals resample the images
of each type with replacement (the global map is held fixed), so thousands of resamples per type
cost well under a second; point estimates come from ``scipy.stats`` exactly.

Orientation is explicit, as everywhere in :mod:`iqa_bench.stats`: ``quality_like`` is higher =
better (pass ``-distance``) and ``mos`` is negated first when ``higher_is_better_mos=False``.

Example:
    >>> fit = correlations(q, mos).fit  # doctest: +SKIP
    >>> per = subset_correlations(q, mos, types, fit=fit, n_boot=1000)  # doctest: +SKIP
    >>> per["jpeg"].srcc.value  # doctest: +SKIP
    0.93
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .bootstrap import _check_confidence, _check_count, _check_seed, percentile_interval
from .correlation import (
    Estimate,
    LogisticFit,
    _krcc,
    _orient,
    _pearson,
    _pearson_rows,
    _srcc,
    _srcc_rows,
)

__all__ = ["SubsetCorrelation", "subset_correlations"]

#: Largest subset whose bootstrap Kendall's tau uses (n, n) sign matrices (see
#: ``_krcc_resamples``); larger subsets call ``scipy.stats.kendalltau`` once per resample.
_PAIRWISE_MAX_N = 2000
MIN_SUBSET_SIZE = 3


@dataclass(frozen=True)
class SubsetCorrelation:
    """SRCC, KRCC and PLCC of one distortion type with bootstrap intervals.

    Attributes:
        srcc: Spearman rank correlation.
        krcc: Kendall tau-b.
        plcc: Pearson correlation of the globally mapped predictions, signed by the map's
            direction (the raw predictions when the global fit did not converge).
        n: Images of the type. Values are NaN when ``n < 3`` or a side is constant.
    """

    srcc: Estimate
    krcc: Estimate
    plcc: Estimate
    n: int


def _krcc_resamples(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Kendall tau-b (as ``scipy.stats.kendalltau``) of each resample ``x[idx[b]], y[idx[b]]``.

    A resample is a multiset of the ``n`` images: with ``w`` the times each image was drawn and
    ``C[i, j] = sign(x_i - x_j) sign(y_i - y_j)``, concordant minus discordant pairs is
    ``w^T C w / 2`` (copies of one image are tied in both, and ``C[i, i] = 0``), and the pairs untied
    in x are ``w^T |sign(x_i - x_j)| w / 2``; so all resamples cost three (B, n) x (n, n) products.
    Above ``_PAIRWISE_MAX_N`` images, ``scipy.stats.kendalltau`` runs once per resample instead.
    """
    rows, n = idx.shape
    if n > _PAIRWISE_MAX_N:
        return np.array([_krcc(x[i], y[i]) for i in idx])
    w = np.bincount((idx + n * np.arange(rows)[:, None]).ravel(), minlength=rows * n)
    w = w.reshape(rows, n).astype(np.float64)
    sx, sy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
    s, tx, ty = (((w @ m) * w).sum(axis=1) for m in (sx * sy, np.abs(sx), np.abs(sy)))
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = s / np.sqrt(tx * ty)
    tau[~(tx * ty > 0)] = np.nan
    return np.clip(tau, -1.0, 1.0)


def _estimate(value: float, reps: np.ndarray, confidence: float) -> Estimate:
    return Estimate(float(value), *percentile_interval(reps, confidence))


def subset_correlations(
    quality_like: ArrayLike,
    mos: ArrayLike,
    subset: ArrayLike,
    *,
    higher_is_better_mos: bool = True,
    fit: LogisticFit | None = None,
    subset_order: Sequence[str] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> dict[str, SubsetCorrelation]:
    """SRCC, KRCC and PLCC per subset (distortion type) with percentile-bootstrap intervals.

    Args:
        quality_like: Predictions, higher = better quality (``-distance`` for a distance).
        mos: Subjective scores.
        subset: Distortion type per image.
        higher_is_better_mos: False for DMOS (higher = worse); it is negated first.
        fit: The logistic fitted on the whole dataset (``correlations(...).fit``); ``None`` or a
            fit that did not converge gives Pearson's r of the raw predictions.
        subset_order: Order of the returned subsets (default: order of first appearance); names
            absent from ``subset`` are returned with ``n=0`` and NaN values.
        n_boot: Resamples per subset (at least 100).
        confidence: Nominal coverage of the intervals.
        seed: Seed for ``numpy.random.default_rng`` (one generator, subsets in order).

    Returns:
        Subset name -> :class:`SubsetCorrelation`.

    Raises:
        ValueError: On non-finite values, mismatched lengths or fewer than 3 images in all.

    Example:
        >>> per = subset_correlations([1, 2, 3, 4, 5, 6], [1, 3, 2, 6, 5, 4], list("aaabbb"),
        ...                           n_boot=100)
        >>> round(per["a"].srcc.value, 2), round(per["b"].srcc.value, 2)
        (0.5, -1.0)
    """
    _check_count("n_boot", n_boot)
    _check_confidence(confidence)
    _check_seed(seed)
    x, y = _orient(quality_like, mos, higher_is_better_mos)
    labels = np.asarray(subset).astype(str).reshape(-1)
    if labels.size != x.size:
        raise ValueError(
            f"subset has {labels.size} labels for {x.size} samples; give one label per sample."
        )
    mapped = x if fit is None else fit.predict(x)
    direction = 1.0 if _pearson(mapped, x) >= 0 or np.ptp(x) == 0 else -1.0
    names = list(dict.fromkeys(labels.tolist())) if subset_order is None else list(subset_order)
    rng = np.random.default_rng(seed)
    nan = Estimate(float("nan"), float("nan"), float("nan"))
    out: dict[str, SubsetCorrelation] = {}
    for name in names:
        keep = labels == name
        n = int(keep.sum())
        if n < MIN_SUBSET_SIZE:
            out[name] = SubsetCorrelation(nan, nan, nan, n)
            continue
        xs, ys, ms = x[keep], y[keep], mapped[keep]
        idx = rng.integers(0, n, size=(n_boot, n))
        points = (_srcc(xs, ys), _krcc(xs, ys), direction * _pearson(ms, ys))
        reps = (
            _srcc_rows(xs[idx], ys[idx]),
            _krcc_resamples(xs, ys, idx),
            direction * _pearson_rows(ms[idx], ys[idx]),
        )
        srcc, krcc, plcc = (_estimate(p, r, confidence) for p, r in zip(points, reps, strict=True))
        out[name] = SubsetCorrelation(srcc, krcc, plcc, n)
    return out

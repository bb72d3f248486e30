"""Two-alternative forced choice (2AFC) scores, the human ceiling and preference correlation.

All inputs are per-sample arrays already aligned by ``sample_id``. ``d0`` and ``d1`` are
*distances* (lower = more similar to the reference); ``iqa_bench.results`` negates similarities
before they reach this module. ``h`` is the fraction of people who preferred ``p1``.

The module also holds the small validation and grouping helpers shared by the other stats
modules, so that every module reports bad input with the same wording.

Example:
    >>> res = twoafc_scores([0.1, 0.5], [0.2, 0.4], [0.0, 1.0], ["a", "b"])
    >>> res.scores, res.mean
    ({'a': 1.0, 'b': 1.0}, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

__all__ = [
    "PreferenceCorrelation",
    "TwoAFCResult",
    "human_ceiling",
    "preference_correlation",
    "twoafc_credit",
    "twoafc_scores",
]

SubsetLabels = ArrayLike | None


# ---------------------------------------------------------------------------
# Shared validation helpers (package-private; used by the sibling stats modules).
# ---------------------------------------------------------------------------


def _as_vector(name: str, values: ArrayLike, *, allow_inf: bool = True) -> np.ndarray:
    """Returns ``values`` as a float64 vector, or raises ``ValueError`` naming ``name``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be numeric but numpy could not convert it to float ({exc}); "
            "pass an array of numbers."
        ) from None
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(
            f"{name} has shape {arr.shape}; pass at least one value per sample, shape (N,)."
        )
    # (N, 1, 1, 1) is what spatially averaged torch metrics return; anything wider is ambiguous.
    if arr.size != arr.shape[0]:
        raise ValueError(
            f"{name} has shape {arr.shape}; expected one value per sample, shape (N,) or "
            "(N, 1, ..., 1). Reduce the extra dimensions before scoring."
        )
    arr = arr.reshape(-1)
    # Infinite distances still order correctly (e.g. -PSNR of identical images), NaN does not.
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        kind = "NaN" if allow_inf else "NaN or infinite"
        raise ValueError(
            f"{name} has {int(bad.sum())} {kind} value(s) (first at index "
            f"{int(np.flatnonzero(bad)[0])}); drop or fix those samples before computing stats."
        )
    return arr


def _as_fraction(name: str, values: ArrayLike, hint: str | None = None) -> np.ndarray:
    """Like :func:`_as_vector` but also requires every value to lie in [0, 1].

    ``hint`` ends the error message with the likely fix; the default suits human judgments.
    """
    arr = _as_vector(name, values, allow_inf=False)
    outside = (arr < 0.0) | (arr > 1.0)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"{name} has {int(outside.sum())} value(s) outside [0, 1] (first: {float(arr[i])!r} at "
            f"index {i}); "
            + (hint or f"{name} must be a fraction of judgments, so divide counts by judges.")
        )
    return arr


def _check_lengths(**arrays: np.ndarray) -> int:
    """Returns the common length of ``arrays`` or raises ``ValueError`` listing all lengths."""
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(
            f"per-sample arrays have different lengths ({listed}); align them by sample_id "
            "so that each has one entry per sample."
        )
    return next(iter(lengths.values()))


def _group_indices(
    subset: SubsetLabels, n: int, subset_order: Sequence[str] | None = None
) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """Splits sample indices by subset label.

    Returns the subset names (first-appearance order unless ``subset_order`` is given) and, for
    each name, the ascending indices of its samples. ``subset=None`` means one subset, ``"all"``.
    """
    if subset is None:
        labels = np.full(n, "all")
    else:
        labels = np.asarray(subset)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(
                f"subset has shape {labels.shape} but there are {n} samples; pass one subset "
                "label per sample (or subset=None for a single subset)."
            )
        labels = labels.astype(str)
    uniq, first = np.unique(labels, return_index=True)
    names = tuple(str(u) for u in uniq[np.argsort(first)])
    if subset_order is not None:
        order = tuple(str(s) for s in subset_order)
        if len(set(order)) != len(order) or set(order) != set(names):
            raise ValueError(
                f"subset_order={list(order)!r} must list each subset present exactly once; "
                f"the data has subsets {sorted(names)!r}."
            )
        names = order
    return names, [np.flatnonzero(labels == name) for name in names]


def _require_min_samples(name: str, n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise ValueError(
            f"{name} has {n} sample(s) but {what} needs at least {minimum}; "
            "pass more samples or merge small subsets."
        )


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoAFCResult:
    """Per-subset 2AFC scores and their summaries.

    Attributes:
        scores: Mean credit per subset, in subset order.
        n: Number of samples per subset, same order as ``scores``.
        mean: Plain mean of the per-subset scores (the headline number of the LPIPS paper).
        pooled: Mean credit over all samples, ignoring subsets (what
            ``lpips.trainer.score_2afc_dataset`` returns for one loader).
    """

    scores: dict[str, float]
    n: dict[str, int]
    mean: float
    pooled: float


@dataclass(frozen=True)
class PreferenceCorrelation:
    """Correlation between a metric's preference ``d0 - d1`` and the human preference ``h``.

    Attributes:
        pearson: Pearson correlation; NaN when either input is constant.
        spearman: Spearman rank correlation; NaN when either input is constant.
        n: Number of samples.
    """

    pearson: float
    spearman: float
    n: int


def twoafc_credit(d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> np.ndarray:
    """Per-sample 2AFC credit: the fraction of people the metric agrees with.

    ``credit = (d0 < d1)(1 - h) + (d1 < d0) h + 0.5 (d0 == d1)``; a tie earns half credit
    whatever the judges said.

    Args:
        d0: Distances between the reference and ``p0``, shape (N,) or (N, 1, 1, 1).
        d1: Distances between the reference and ``p1``, same shape.
        h: Fraction of people who preferred ``p1``, in [0, 1].

    Returns:
        Float64 array of shape (N,) with values in [0, 1].

    Raises:
        ValueError: On NaN distances, ``h`` outside [0, 1] or mismatched lengths.

    Example:
        >>> twoafc_credit([0.1, 0.3, 0.2], [0.2, 0.1, 0.2], [0.25, 0.25, 1.0]).tolist()
        [0.75, 0.25, 0.5]
    """
    d0v, d1v, hv = _as_vector("d0", d0), _as_vector("d1", d1), _as_fraction("h", h)
    _check_lengths(d0=d0v, d1=d1v, h=hv)
    return (d0v < d1v) * (1.0 - hv) + (d1v < d0v) * hv + (d0v == d1v) * 0.5


def _summarise(
    values: np.ndarray, subset: SubsetLabels, subset_order: Sequence[str] | None
) -> TwoAFCResult:
    names, groups = _group_indices(subset, len(values), subset_order)
    scores = {name: float(values[idx].mean()) for name, idx in zip(names, groups, strict=True)}
    return TwoAFCResult(
        scores=scores,
        n={name: int(idx.size) for name, idx in zip(names, groups, strict=True)},
        mean=float(np.mean(list(scores.values()))),
        pooled=float(values.mean()),
    )


def twoafc_scores(
    d0: ArrayLike,
    d1: ArrayLike,
    h: ArrayLike,
    subset: SubsetLabels = None,
    *,
    subset_order: Sequence[str] | None = None,
) -> TwoAFCResult:
    """2AFC score per subset and the plain mean over subsets.

    Args:
        d0: Distances between the reference and ``p0``, shape (N,) or (N, 1, 1, 1).
        d1: Distances between the reference and ``p1``.
        h: Fraction of people who preferred ``p1``, in [0, 1].
        subset: One label per sample (e.g. ``"cnn"``, ``"traditional"``); ``None`` puts every
            sample in a single subset called ``"all"``.
        subset_order: Order of the subsets in the result; defaults to first appearance.

    Returns:
        A :class:`TwoAFCResult`.

    Raises:
        ValueError: On invalid inputs (see :func:`twoafc_credit`) or a ``subset_order`` that
            does not list exactly the subsets present.

    Example:
        >>> res = twoafc_scores([1, 1, 1], [2, 2, 0], [0.0, 0.5, 0.0], ["x", "x", "y"])
        >>> res.scores, res.mean
        ({'x': 0.75, 'y': 0.0}, 0.375)
    """
    return _summarise(twoafc_credit(d0, d1, h), subset, subset_order)


def human_ceiling(
    h: ArrayLike, subset: SubsetLabels = None, *, subset_order: Sequence[str] | None = None
) -> TwoAFCResult:
    """Expected 2AFC score of a random human judge, ``h^2 + (1 - h)^2``, per subset.

    A single human who picks ``p1`` with probability ``h`` (as the panel did) earns credit
    ``h * h + (1 - h)(1 - h)`` in expectation: the agreement of one person with the others.

    Args:
        h: Fraction of people who preferred ``p1``, in [0, 1].
        subset: One label per sample, or ``None`` for a single subset ``"all"``.
        subset_order: Order of the subsets in the result; defaults to first appearance.

    Returns:
        A :class:`TwoAFCResult` whose scores are the per-subset ceilings.

    Example:
        >>> human_ceiling([0.0, 0.5, 1.0], ["a", "a", "b"]).scores
        {'a': 0.75, 'b': 1.0}
    """
    hv = _as_fraction("h", h)
    return _summarise(hv**2 + (1.0 - hv) ** 2, subset, subset_order)


def preference_correlation(d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> PreferenceCorrelation:
    """Correlates the metric's preference ``d0 - d1`` with the human preference ``h``.

    ``d0 - d1 > 0`` means the metric finds ``p1`` closer, i.e. it prefers ``p1`` like a high
    ``h`` does, so a positive correlation means agreement. The sign is kept on purpose.

    Args:
        d0: Distances between the reference and ``p0``.
        d1: Distances between the reference and ``p1``.
        h: Fraction of people who preferred ``p1``, in [0, 1].

    Returns:
        A :class:`PreferenceCorrelation`; both correlations are NaN when either the preference
        or ``h`` is constant (the correlation is undefined there).

    Raises:
        ValueError: On invalid inputs, infinite distances, or fewer than 2 samples.

    Example:
        >>> r = preference_correlation([0.2, 0.1, 0.5], [0.1, 0.3, 0.2], [0.9, 0.1, 0.8])
        >>> round(r.spearman, 3)
        0.5
    """
    d0v = _as_vector("d0", d0, allow_inf=False)
    d1v = _as_vector("d1", d1, allow_inf=False)
    hv = _as_fraction("h", h)
    n = _check_lengths(d0=d0v, d1=d1v, h=hv)
    _require_min_samples("d0", n, 2, "a correlation")
    pref = d0v - d1v
    if np.ptp(pref) == 0 or np.ptp(hv) == 0:
        return PreferenceCorrelation(pearson=float("nan"), spearman=float("nan"), n=n)
    return PreferenceCorrelation(
        pearson=float(scipy.stats.pearsonr(pref, hv).statistic),
        spearman=float(scipy.stats.spearmanr(pref, hv).statistic),
        n=n,
    )

"""Just-noticeable-difference (JND) average precision, as in the LPIPS paper.

Pairs are ranked by distance, ascending: a good metric puts the pairs that people called "same"
first. ``same`` is a fraction, so each pair contributes fractional true and false positives.
AP is the continuous (VOC2010+) area under the precision envelope, not the 11-point variant.

Ties between distances are broken by input order (stable sort), so the result is
deterministic; the reference implementation uses an unstable sort and may differ on ties.

Example:
    >>> round(jnd_ap([0.1, 0.2, 0.3], [1.0, 0.0, 1.0]), 6)
    0.833333
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .twoafc import SubsetLabels, _as_fraction, _as_vector, _check_lengths, _group_indices

__all__ = ["JNDResult", "jnd_ap", "jnd_map", "voc_ap"]


@dataclass(frozen=True)
class JNDResult:
    """Per-subset JND average precision and its summaries.

    Attributes:
        scores: AP per subset, in subset order.
        n: Number of samples per subset, same order as ``scores``.
        mean: Plain mean of the per-subset APs (the mAP headline).
        pooled: AP over all samples ranked together (what ``lpips.trainer.score_jnd_dataset``
            computes for one loader, without its shape bug).
    """

    scores: dict[str, float]
    n: dict[str, int]
    mean: float
    pooled: float


def _voc_ap_rows(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Continuous VOC AP for each row of 2-D ``recall`` / ``precision`` (no validation)."""
    rows = recall.shape[0]
    zeros, ones = np.zeros((rows, 1)), np.ones((rows, 1))
    mrec = np.concatenate([zeros, recall, ones], axis=1)
    mpre = np.concatenate([zeros, precision, zeros], axis=1)
    # The envelope makes precision non-increasing in recall, i.e. interpolated precision.
    mpre = np.maximum.accumulate(mpre[:, ::-1], axis=1)[:, ::-1]
    # Where recall does not change the step width is exactly 0, so summing every step equals
    # the VOC "sum over recall changes" without a ragged per-row index.
    return np.sum(np.diff(mrec, axis=1) * mpre[:, 1:], axis=1)


def _jnd_ap_rows(d: np.ndarray, same: np.ndarray) -> np.ndarray:
    """JND AP for each row of 2-D ``d`` / ``same``; NaN for rows where ``same`` sums to 0."""
    order = np.argsort(d, axis=1, kind="stable")
    same_sorted = np.take_along_axis(same, order, axis=1)
    tp = np.cumsum(same_sorted, axis=1)
    fp = np.cumsum(1.0 - same_sorted, axis=1)
    total = tp[:, -1:]
    # fp + tp is the rank (>= 1), so precision is always defined; recall needs a positive.
    precision = tp / (tp + fp)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / total
    ap = _voc_ap_rows(np.where(total > 0, recall, 0.0), precision)
    return np.where(total[:, 0] > 0, ap, np.nan)


def voc_ap(recall: ArrayLike, precision: ArrayLike) -> float:
    """Continuous VOC (2010+) average precision from a precision-recall curve.

    Pads recall with 0 and 1 and precision with 0 and 0, replaces precision by its running
    maximum from the right, and sums ``Δrecall × precision`` over the points where recall
    changes. Matches ``lpips.voc_ap(rec, prec, use_07_metric=False)``.

    Args:
        recall: Non-decreasing recall values in [0, 1], shape (K,).
        precision: Precision at each recall value, in [0, 1], shape (K,).

    Returns:
        The average precision, in [0, 1].

    Raises:
        ValueError: On mismatched lengths, values outside [0, 1] or decreasing recall.

    Example:
        >>> voc_ap([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3])
        0.8333333333333333
    """
    hint = "recall and precision are ratios, so they cannot leave [0, 1]."
    rec, prec = _as_fraction("recall", recall, hint), _as_fraction("precision", precision, hint)
    _check_lengths(recall=rec, precision=prec)
    if np.any(np.diff(rec) < 0):
        i = int(np.flatnonzero(np.diff(rec) < 0)[0])
        before, after = float(rec[i]), float(rec[i + 1])
        raise ValueError(
            f"recall decreases at index {i + 1} ({before!r} -> {after!r}); pass the curve "
            "ordered by rank, which makes recall non-decreasing."
        )
    return float(_voc_ap_rows(rec[None, :], prec[None, :])[0])


def _check_positive(same: np.ndarray, where: str) -> None:
    if not same.sum() > 0:
        raise ValueError(
            f"same sums to 0{where}: no pair was judged 'same', so recall and AP are "
            "undefined; include pairs with same > 0 or leave this subset out."
        )


def jnd_ap(d: ArrayLike, same: ArrayLike) -> float:
    """JND average precision of distances ``d`` against the "same" fractions.

    ``d`` is flattened first, so the (N, 1, 1, 1) output of spatially averaged metrics works.
    Pairs are stable-sorted by distance, ascending; ``TP = cumsum(same)``,
    ``FP = cumsum(1 - same)``, ``FN = sum(same) - TP``, then :func:`voc_ap` of
    ``recall = TP / (TP + FN)`` and ``precision = TP / (TP + FP)``.

    Args:
        d: Distance between the two patches of each pair, shape (N,) or (N, 1, 1, 1).
        same: Fraction of people who said the two patches look the same, in [0, 1].

    Returns:
        The average precision, in [0, 1].

    Raises:
        ValueError: On NaN distances, ``same`` outside [0, 1], mismatched lengths or
            ``same`` summing to 0.

    Example:
        >>> jnd_ap([[[[0.3]]], [[[0.1]]]], [0.0, 1.0])
        1.0
    """
    dv, sv = _as_vector("d", d), _as_fraction("same", same)
    _check_lengths(d=dv, same=sv)
    _check_positive(sv, "")
    return float(_jnd_ap_rows(dv[None, :], sv[None, :])[0])


def jnd_map(
    d: ArrayLike,
    same: ArrayLike,
    subset: SubsetLabels = None,
    *,
    subset_order: Sequence[str] | None = None,
) -> JNDResult:
    """JND AP per subset and the plain mean over subsets (mAP).

    Args:
        d: Distance between the two patches of each pair, shape (N,) or (N, 1, 1, 1).
        same: Fraction of people who said the two patches look the same, in [0, 1].
        subset: One label per sample, or ``None`` for a single subset ``"all"``.
        subset_order: Order of the subsets in the result; defaults to first appearance.

    Returns:
        A :class:`JNDResult`.

    Raises:
        ValueError: As :func:`jnd_ap`, naming the subset whose ``same`` sums to 0.

    Example:
        >>> res = jnd_map([0.1, 0.2, 0.1, 0.2], [1, 0, 0, 1], ["a", "a", "b", "b"])
        >>> res.scores, res.mean
        ({'a': 1.0, 'b': 0.5}, 0.75)
    """
    dv, sv = _as_vector("d", d), _as_fraction("same", same)
    n = _check_lengths(d=dv, same=sv)
    names, groups = _group_indices(subset, n, subset_order)
    scores = {}
    for name, idx in zip(names, groups, strict=True):
        _check_positive(sv[idx], f" in subset {name!r}")
        scores[name] = float(_jnd_ap_rows(dv[None, idx], sv[None, idx])[0])
    return JNDResult(
        scores=scores,
        n={name: int(idx.size) for name, idx in zip(names, groups, strict=True)},
        mean=float(np.mean(list(scores.values()))),
        pooled=float(_jnd_ap_rows(dv[None, :], sv[None, :])[0]),
    )

"""Correlation of metric predictions with mean opinion scores (SRCC, KRCC, PLCC).

Orientation is explicit, never ``abs()``: predictions are ``quality_like`` (higher = better
quality; pass ``-distance`` for a distance) and ``mos`` is negated first when
``higher_is_better_mos=False`` (DMOS). A metric that ranks images the wrong way round gets a
negative correlation.

PLCC follows VQEG practice: a logistic maps predictions to the MOS scale, then Pearson's r of
the mapped predictions against MOS is taken. The fitted map can be decreasing, which would make
Pearson's r of the mapped values positive even for a backwards metric, so the PLCC carries the
sign of the map's direction (the sign of its correlation with the raw predictions). A failed fit
never raises: ``LogisticFit.converged`` is False and PLCC falls back to the raw predictions.

Example:
    >>> q, dmos = [0.9, 0.7, 0.4, 0.1], [10.0, 25.0, 60.0, 80.0]
    >>> srcc(q, dmos, higher_is_better_mos=False)
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.optimize
import scipy.stats
from numpy.typing import ArrayLike

from .bootstrap import (
    _BLOCK_ENTRIES,
    _check_confidence,
    _check_count,
    _check_seed,
    percentile_interval,
)
from .logistic import (
    _CURVES,
    _fit_standardized,
    _to_original_units,
    fit_rows,
    logistic_4pl,
    logistic_5pl,
)
from .twoafc import _as_vector, _check_lengths, _require_min_samples

__all__ = [
    "CorrelationResult",
    "Estimate",
    "LogisticFit",
    "PLCCResult",
    "correlations",
    "fit_logistic",
    "krcc",
    "logistic_4pl",
    "logistic_5pl",
    "plcc",
    "srcc",
]

LogisticKind = Literal["5pl", "4pl"]
#: Relative tolerance (``ftol``/``xtol``) of the logistic refits in bootstrap resamples. The fit on
#: the full data uses scipy's default (1.49e-8); a resample's PLCC moves by about 1e-6 at this
#: tolerance, far below the resampling spread, while near-linear data (where the logistic is
#: poorly determined) needs several times fewer iterations and fewer refits hit ``maxfev``.
RESAMPLE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class LogisticFit:
    """A fitted logistic map from predictions to (oriented) MOS.

    Attributes:
        kind: ``"5pl"``, ``"4pl"`` or ``"none"`` (no fit requested).
        params: Parameters in the units of the inputs (empty unless ``converged``).
        converged: Whether the fit succeeded; if not, PLCC used the raw predictions.
        message: What happened, in words (including why a fit failed).
    """

    kind: str
    params: tuple[float, ...]
    converged: bool
    message: str

    def predict(self, quality_like: ArrayLike) -> np.ndarray:
        """Maps predictions through the fit; the identity when there is no usable fit.

        Example:
            >>> LogisticFit("none", (), False, "no fit").predict([1, 2]).tolist()
            [1.0, 2.0]
        """
        x = np.asarray(quality_like, dtype=np.float64)
        if not self.converged or self.kind not in _CURVES:
            return x
        return _CURVES[self.kind](x, *self.params)


@dataclass(frozen=True)
class PLCCResult:
    """PLCC and the logistic fit behind it.

    Attributes:
        value: Signed PLCC (NaN when undefined, e.g. constant predictions).
        fit: The :class:`LogisticFit` used.
    """

    value: float
    fit: LogisticFit


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a percentile-bootstrap interval.

    Attributes:
        value: Estimate on the full data.
        low: Lower end of the interval.
        high: Upper end of the interval.
    """

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class CorrelationResult:
    """SRCC, KRCC and PLCC with bootstrap intervals.

    Attributes:
        srcc: Spearman rank correlation.
        krcc: Kendall tau-b.
        plcc: Signed Pearson correlation after the logistic map.
        fit: The logistic fit on the full data.
        n: Number of samples.
        n_boot: Number of resamples.
        confidence: Nominal coverage of the intervals.
        seed: Seed given to ``numpy.random.default_rng``.
        fit_failures: Resamples whose logistic fit failed; their PLCC is the raw Pearson
            correlation (NaN for a constant resample).
    """

    srcc: Estimate
    krcc: Estimate
    plcc: Estimate
    fit: LogisticFit
    n: int
    n_boot: int
    confidence: float
    seed: int | None
    fit_failures: int


def _orient(
    quality_like: ArrayLike, mos: ArrayLike, higher_is_better_mos: bool
) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(higher_is_better_mos, bool | np.bool_):
        raise ValueError(
            f"higher_is_better_mos must be True or False, got {higher_is_better_mos!r}; "
            "pass False for DMOS (higher = worse)."
        )
    x = _as_vector("quality_like", quality_like, allow_inf=False)
    y = _as_vector("mos", mos, allow_inf=False)
    n = _check_lengths(quality_like=x, mos=y)
    _require_min_samples("quality_like", n, 3, "a correlation")
    return x, (y if higher_is_better_mos else -y)


def _constant(x: np.ndarray, y: np.ndarray) -> bool:
    return bool(np.ptp(x) == 0 or np.ptp(y) == 0)


def _srcc(x: np.ndarray, y: np.ndarray) -> float:
    return float("nan") if _constant(x, y) else float(scipy.stats.spearmanr(x, y).statistic)


def _krcc(x: np.ndarray, y: np.ndarray) -> float:
    return float("nan") if _constant(x, y) else float(scipy.stats.kendalltau(x, y).statistic)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float("nan") if _constant(x, y) else float(scipy.stats.pearsonr(x, y).statistic)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson r of two (B, n) arrays; NaN for a constant row."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a * b).sum(axis=1) / den
    r[~(den > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _srcc_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rho (average ranks for ties, as ``scipy.stats.spearmanr``)."""
    return _pearson_rows(
        scipy.stats.rankdata(a, method="average", axis=1),
        scipy.stats.rankdata(b, method="average", axis=1),
    )


def _plcc_oriented(
    x: np.ndarray,
    y: np.ndarray,
    kind: str | None,
    p0: np.ndarray | None = None,
    tol: float | None = None,
) -> tuple[float, LogisticFit, np.ndarray | None]:
    """Signed PLCC of oriented data; also returns the standardized params for warm starts."""
    if kind is None:
        return _pearson(x, y), LogisticFit("none", (), False, "no logistic fit requested"), None
    if _constant(x, y):
        which = "quality_like" if np.ptp(x) == 0 else "mos"
        reason = f"{which} is constant, so no correlation is defined"
        return float("nan"), LogisticFit(kind, (), False, reason), None
    mx, sx, my, sy = float(x.mean()), float(x.std()), float(y.mean()), float(y.std())
    z, t = (x - mx) / sx, (y - my) / sy
    params, reason = _fit_standardized(z, t, kind, p0, tol, (x, y))
    if params is None:
        message = f"{kind} logistic fit did not converge ({reason}); PLCC uses raw predictions"
        return _pearson(x, y), LogisticFit(kind, (), False, message), None
    fitted = _CURVES[kind](z, *params)
    # Pearson of the mapped values is positive even for a decreasing map, so take the sign
    # from the direction of the map (its correlation with the raw predictions).
    direction = 1.0 if _pearson(fitted, z) >= 0 else -1.0
    fit = LogisticFit(
        kind,
        _to_original_units(kind, params, mx, sx, my, sy),
        True,
        f"{kind} logistic fit converged",
    )
    return direction * _pearson(fitted, t), fit, params


def _plcc_rows(
    xb: np.ndarray, yb: np.ndarray, kind: str | None, warm: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """PLCC of each resample (row), refitting the logistic warm-started from ``warm``.

    All rows are fitted together (:func:`~iqa_bench.stats.logistic.fit_rows`); a row that does
    not converge there, or whose fit is flat, is refitted alone with ``curve_fit``. Returns the
    values and how many rows failed even that (their PLCC uses the raw predictions).
    """
    if kind is None:
        return _pearson_rows(xb, yb), 0
    out = np.full(xb.shape[0], np.nan)
    varying = (np.ptp(xb, axis=1) > 0) & (np.ptp(yb, axis=1) > 0)
    alone = np.zeros(xb.shape[0], dtype=bool) if warm is not None else varying.copy()
    if warm is not None and varying.any():
        rows = np.flatnonzero(varying)
        x, y = xb[rows], yb[rows]
        z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        t = (y - y.mean(axis=1, keepdims=True)) / y.std(axis=1, keepdims=True)
        params, ok = fit_rows(z, t, kind, warm, RESAMPLE_TOLERANCE)
        fitted = _CURVES[kind](z, *[params[:, [k]] for k in range(params.shape[1])])
        ok &= np.isfinite(fitted).all(axis=1) & (np.ptp(fitted, axis=1) > 0)
        direction = np.where(_pearson_rows(fitted, z) >= 0, 1.0, -1.0)
        out[rows[ok]] = (direction * _pearson_rows(fitted, t))[ok]
        alone[rows[~ok]] = True
    failures = 0
    for r in np.flatnonzero(alone):
        out[r], fit, _ = _plcc_oriented(xb[r], yb[r], kind, warm, RESAMPLE_TOLERANCE)
        failures += int(not fit.converged)
    return out, failures


def _check_kind(logistic: str | None) -> None:
    if logistic is not None and logistic not in _CURVES:
        raise ValueError(f"logistic={logistic!r} is not supported; use '5pl', '4pl' or None.")


def srcc(quality_like: ArrayLike, mos: ArrayLike, *, higher_is_better_mos: bool = True) -> float:
    """Spearman rank correlation between oriented predictions and MOS.

    Args:
        quality_like: Predictions, higher = better quality.
        mos: Subjective scores.
        higher_is_better_mos: False for DMOS (higher = worse); it is negated first.

    Returns:
        SRCC in [-1, 1]; NaN when either input is constant.

    Raises:
        ValueError: On non-finite values, mismatched lengths or fewer than 3 samples.

    Example:
        >>> srcc([1, 2, 3], [1, 3, 2])
        0.5
    """
    return _srcc(*_orient(quality_like, mos, higher_is_better_mos))


def krcc(quality_like: ArrayLike, mos: ArrayLike, *, higher_is_better_mos: bool = True) -> float:
    """Kendall tau-b between oriented predictions and MOS.

    Args:
        quality_like: Predictions, higher = better quality.
        mos: Subjective scores.
        higher_is_better_mos: False for DMOS (higher = worse); it is negated first.

    Returns:
        KRCC in [-1, 1]; NaN when either input is constant.

    Example:
        >>> round(krcc([1, 2, 3], [1, 3, 2]), 6)
        0.333333
    """
    return _krcc(*_orient(quality_like, mos, higher_is_better_mos))


def fit_logistic(
    quality_like: ArrayLike,
    mos: ArrayLike,
    *,
    higher_is_better_mos: bool = True,
    kind: LogisticKind = "5pl",
) -> LogisticFit:
    """Fits a logistic map from predictions to oriented MOS with ``scipy.optimize.curve_fit``.

    Inputs are standardized for the fit (initial values come from the data ranges) and the
    parameters are reported in the original units. Never raises for non-convergence.

    Args:
        quality_like: Predictions, higher = better quality.
        mos: Subjective scores.
        higher_is_better_mos: False for DMOS; the fit then maps to ``-mos``.
        kind: ``"5pl"`` (VQEG, with linear term) or ``"4pl"``.

    Returns:
        A :class:`LogisticFit`; check ``converged``.

    Example:
        >>> fit_logistic([1, 2, 3, 4, 5, 6, 7], [1, 1, 2, 5, 8, 9, 9], kind="4pl").converged
        True
    """
    _check_kind(kind)
    return _plcc_oriented(*_orient(quality_like, mos, higher_is_better_mos), kind)[1]


def plcc(
    quality_like: ArrayLike,
    mos: ArrayLike,
    *,
    higher_is_better_mos: bool = True,
    logistic: LogisticKind | None = "5pl",
) -> PLCCResult:
    """Pearson correlation after a logistic map, with the sign of the map's direction.

    Args:
        quality_like: Predictions, higher = better quality.
        mos: Subjective scores.
        higher_is_better_mos: False for DMOS (higher = worse); it is negated first.
        logistic: ``"5pl"``, ``"4pl"`` or ``None`` for Pearson on the raw predictions.

    Returns:
        A :class:`PLCCResult`; if the fit failed, ``fit.converged`` is False, the value is the
        raw Pearson correlation and ``fit.message`` says so.

    Example:
        >>> res = plcc([1, 2, 3, 4], [2, 4, 6, 8], logistic=None)
        >>> round(res.value, 6), res.fit.kind
        (1.0, 'none')
    """
    _check_kind(logistic)
    value, fit, _ = _plcc_oriented(*_orient(quality_like, mos, higher_is_better_mos), logistic)
    return PLCCResult(value=value, fit=fit)


def correlations(
    quality_like: ArrayLike,
    mos: ArrayLike,
    *,
    higher_is_better_mos: bool = True,
    logistic: LogisticKind | None = "5pl",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> CorrelationResult:
    """SRCC, KRCC and PLCC with percentile-bootstrap intervals.

    Each resample redraws images with replacement and recomputes all three, refitting the
    logistic (warm-started from the full-data fit, to a relative tolerance of
    :data:`RESAMPLE_TOLERANCE`). The refits of a block of resamples run together as array
    operations (:mod:`~iqa_bench.stats.logistic`); a resample that does not converge there is
    refitted alone with ``curve_fit``.

    Args:
        quality_like: Predictions, higher = better quality.
        mos: Subjective scores.
        higher_is_better_mos: False for DMOS (higher = worse); it is negated first.
        logistic: ``"5pl"``, ``"4pl"`` or ``None`` (raw Pearson).
        n_boot: Number of resamples (at least 100).
        confidence: Nominal coverage of the intervals.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        A :class:`CorrelationResult`; undefined values are NaN, never an exception.

    Example:
        >>> r = correlations([1, 2, 3, 4, 5, 6], [1, 3, 2, 5, 4, 6], logistic=None, n_boot=100)
        >>> round(r.srcc.value, 4), r.srcc.low <= r.srcc.value <= r.srcc.high
        (0.8857, True)
    """
    _check_kind(logistic)
    _check_count("n_boot", n_boot)
    _check_confidence(confidence)
    _check_seed(seed)
    x, y = _orient(quality_like, mos, higher_is_better_mos)
    n = x.size
    value, fit, warm = _plcc_oriented(x, y, logistic)
    rng = np.random.default_rng(seed)
    reps = np.empty((n_boot, 3))
    failures = 0
    # A block of resamples is fitted together; its Jacobian holds rows x n x 5 floats.
    rows = max(1, min(n_boot, _BLOCK_ENTRIES // (5 * n)))
    for start in range(0, n_boot, rows):
        idx = rng.integers(0, n, size=(min(rows, n_boot - start), n))
        xb, yb = x[idx], y[idx]
        block = slice(start, start + len(idx))
        reps[block, 0] = _srcc_rows(xb, yb)
        reps[block, 1] = [_krcc(a, b) for a, b in zip(xb, yb)]
        reps[block, 2], failed = _plcc_rows(xb, yb, logistic, warm)
        failures += failed
    values = (_srcc(x, y), _krcc(x, y), value)
    srcc_e, krcc_e, plcc_e = (
        Estimate(v, *percentile_interval(reps[:, k], confidence)) for k, v in enumerate(values)
    )
    return CorrelationResult(
        srcc=srcc_e,
        krcc=krcc_e,
        plcc=plcc_e,
        fit=fit,
        n=n,
        n_boot=int(n_boot),
        confidence=float(confidence),
        seed=None if seed is None else int(seed),
        fit_failures=failures,
    )

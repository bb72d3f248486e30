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

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.optimize
import scipy.stats
from numpy.typing import ArrayLike
from scipy.special import expit

from .bootstrap import (
    _BLOCK_ENTRIES,
    _check_confidence,
    _check_count,
    _check_seed,
    percentile_interval,
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


def logistic_5pl(x: ArrayLike, b1: float, b2: float, b3: float, b4: float, b5: float) -> np.ndarray:
    """VQEG 5-parameter logistic: ``b1 (0.5 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5``.

    Example:
        >>> float(logistic_5pl(2.0, 4.0, 1.0, 2.0, 0.0, 3.0))
        3.0
    """
    x = np.asarray(x, dtype=np.float64)
    # expit(u) = 1 / (1 + exp(-u)) without overflow warnings for large |u|.
    return b1 * (0.5 - expit(-b2 * (x - b3))) + b4 * x + b5


def logistic_4pl(x: ArrayLike, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """4-parameter logistic: ``(b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2``.

    ``b1`` and ``b2`` are the upper and lower asymptotes, ``b3`` the midpoint, ``b4`` the scale.

    Example:
        >>> float(logistic_4pl(0.0, 5.0, 1.0, 0.0, 1.0))
        3.0
    """
    x = np.asarray(x, dtype=np.float64)
    return (b1 - b2) * expit((x - b3) / b4) + b2


def _jacobian_5pl(
    x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float
) -> np.ndarray:
    s = expit(-b2 * (x - b3))
    slope = s * (1.0 - s)
    return np.stack([0.5 - s, b1 * slope * (x - b3), -b1 * b2 * slope, x, np.ones_like(x)], axis=1)


def _jacobian_4pl(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    g = expit((x - b3) / b4)
    slope = (b1 - b2) * g * (1.0 - g)
    return np.stack([g, 1.0 - g, -slope / b4, -slope * (x - b3) / b4**2], axis=1)


_CURVES: dict[str, Callable[..., np.ndarray]] = {"5pl": logistic_5pl, "4pl": logistic_4pl}
# Analytic Jacobians: MINPACK's finite differences use a step proportional to |param|, which
# is ~1e-24 for the (near-zero) standardized initial values and leaves such params stuck.
_JACOBIANS: dict[str, Callable[..., np.ndarray]] = {"5pl": _jacobian_5pl, "4pl": _jacobian_4pl}


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


def _fit_standardized(
    z: np.ndarray, t: np.ndarray, kind: str, p0: np.ndarray | None, tol: float | None = None
) -> tuple[np.ndarray | None, str]:
    """Fits ``kind`` to standardized data; returns (params or None, failure reason).

    ``tol`` sets ``curve_fit``'s ``ftol`` and ``xtol`` (default: scipy's).
    """
    curve = _CURVES[kind]
    n_params = 5 if kind == "5pl" else 4
    if z.size <= n_params:
        return None, f"{z.size} samples cannot determine {n_params} parameters"
    if p0 is None:
        # Start from a curve that spans the data: midpoint at the median, unit slope in the
        # direction of the raw correlation.
        direction = 1.0 if np.dot(z, t) >= 0 else -1.0
        if kind == "5pl":
            p0 = np.array([np.ptp(t), direction, np.median(z), 0.0, np.mean(t)])
        else:
            p0 = np.array([t.max(), t.min(), np.median(z), direction])
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
            params, _ = scipy.optimize.curve_fit(
                curve,
                z,
                t,
                p0=p0,
                jac=_JACOBIANS[kind],
                maxfev=20000,
                **({"ftol": tol, "xtol": tol} if tol else {}),
            )
            fitted = curve(z, *params)
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        return None, f"curve_fit failed: {exc}"
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(fitted))):
        return None, "curve_fit returned non-finite parameters"
    if np.ptp(fitted) == 0:
        return None, "the fitted curve is flat"
    return params, ""


def _to_original_units(
    kind: str, p: np.ndarray, mx: float, sx: float, my: float, sy: float
) -> tuple[float, ...]:
    """Rewrites params fitted on ``z = (x - mx) / sx`` and ``t = (y - my) / sy`` for x and y."""
    if kind == "5pl":
        b1, b2, b3, b4, b5 = p
        return tuple(
            float(v)
            for v in (
                sy * b1,
                b2 / sx,
                mx + sx * b3,
                sy * b4 / sx,
                my + sy * b5 - sy * b4 * mx / sx,
            )
        )
    b1, b2, b3, b4 = p
    return tuple(float(v) for v in (my + sy * b1, my + sy * b2, mx + sx * b3, sx * b4))


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
    params, reason = _fit_standardized(z, t, kind, p0, tol)
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
    :data:`RESAMPLE_TOLERANCE`). Resamples run one by one, about 10 ms
    each for 3000 images, so 1000 resamples take about 10 s (KADID-sized data: ~30 s).

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
    rows = max(1, min(n_boot, _BLOCK_ENTRIES // n))
    for start in range(0, n_boot, rows):
        for b, idx in enumerate(rng.integers(0, n, size=(min(rows, n_boot - start), n))):
            xb, yb = x[idx], y[idx]
            r, fit_b, _ = _plcc_oriented(xb, yb, logistic, warm, RESAMPLE_TOLERANCE)
            failures += int(logistic is not None and not fit_b.converged)
            reps[start + b] = (_srcc(xb, yb), _krcc(xb, yb), r)
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

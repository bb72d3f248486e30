"""The logistic maps of PLCC (VQEG 5-parameter, 4-parameter) and their least-squares fits.

A single fit goes through ``scipy.optimize.curve_fit`` with analytic Jacobians. Bootstrap
resamples are refitted together by :func:`fit_rows`: refitting with ``curve_fit`` once per
resample costs milliseconds of Python and MINPACK overhead each, which made a 1000-resample PLCC
interval take tens of seconds on KADID-sized data. ``fit_rows`` takes the same damped Gauss-Newton
(Levenberg-Marquardt) steps for all rows as array operations, with per-row damping and per-row
convergence tests in the spirit of MINPACK's ``ftol``/``xtol``; rows that do not converge are
reported so the caller can refit them one by one.

Example:
    >>> z = np.linspace(-2, 2, 50)[None].repeat(3, axis=0)
    >>> t = logistic_5pl(z, 1.0, 2.0, 0.1, 0.2, 0.0)
    >>> params, ok = fit_rows(z, t, "5pl", np.array([1.0, 1.0, 0.0, 0.0, 0.0]), 1e-10)
    >>> bool(ok.all()), np.allclose(params, [1.0, 2.0, 0.1, 0.2, 0.0], atol=1e-6)
    (True, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike
from scipy.special import expit

__all__ = ["fit_rows", "logistic_4pl", "logistic_5pl"]


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
    x: np.ndarray, b1: float, b2: float, b3: float, b4: float, b5: float, *, axis: int = -1
) -> np.ndarray:
    """Partial derivatives by parameter, stacked along ``axis`` (-1: the (n, 5) of curve_fit)."""
    s = expit(-b2 * (x - b3))
    slope = s * (1.0 - s)
    columns = [0.5 - s, b1 * slope * (x - b3), -b1 * b2 * slope, x, np.ones_like(s)]
    return np.stack(np.broadcast_arrays(*columns), axis=axis)


def _jacobian_4pl(
    x: np.ndarray, b1: float, b2: float, b3: float, b4: float, *, axis: int = -1
) -> np.ndarray:
    """Partial derivatives by parameter, stacked along ``axis`` (-1: the (n, 4) of curve_fit)."""
    g = expit((x - b3) / b4)
    slope = (b1 - b2) * g * (1.0 - g)
    return np.stack([g, 1.0 - g, -slope / b4, -slope * (x - b3) / b4**2], axis=axis)


_CURVES: dict[str, Callable[..., np.ndarray]] = {"5pl": logistic_5pl, "4pl": logistic_4pl}
# Analytic Jacobians: MINPACK's finite differences use a step proportional to |param|, which
# is ~1e-24 for the (near-zero) standardized initial values and leaves such params stuck.
_JACOBIANS: dict[str, Callable[..., np.ndarray]] = {"5pl": _jacobian_5pl, "4pl": _jacobian_4pl}


def _starts(
    z: np.ndarray, t: np.ndarray, kind: str, raw: tuple[np.ndarray, np.ndarray]
) -> list[tuple[str, np.ndarray]]:
    """Named starting points on standardized data, the historical data-spanning start first.

    ``raw`` is the ``(x, y)`` that ``z`` and ``t`` standardize; the VQEG start is in its units.

    5PL: the VQEG start ``b1 = max(mos), b2 = min(mos), b3 = mean(score), b4 = 0.1, b5 = 0.1`` in
    the units of the data is the one of the MATLAB evaluation scripts used with the LIVE/TID
    analyses (``beta(1) = max(mos); beta(2) = min(mos); beta(3) = mean(score); beta(4) = 0.1;
    beta(5) = 0.1;`` before ``nlinfit``, e.g. ``calucc.m``; VQEG, "Final report from the Video
    Quality Experts Group on the validation of objective models of video quality assessment",
    2003, defines the function, not the start). ``pyiqa`` (``fit_curve``, taken from DBCNN's
    ``verify_performance.m``) starts from ``[10, 0, mean(mos), 0.1, 0.1]`` instead, a flat curve;
    neither is good on its own on tied or weakly related data, so a few data-driven starts
    (a straight line, steeper and shallower curves, midpoints at the quartiles) join them.
    4PL: ``pyiqa``'s ``[max(mos), min(mos), mean(score), std(score) / 4]`` joins the
    data-spanning start and its mirror.
    """
    x, y = raw
    direction = 1.0 if np.dot(z, t) >= 0 else -1.0
    mid, top, bottom = float(np.median(z)), float(t.max()), float(t.min())
    if kind == "4pl":
        return [
            ("data-spanning", np.array([top, bottom, mid, direction])),
            ("pyiqa", np.array([top, bottom, 0.0, 0.25])),
            ("mirrored", np.array([bottom, top, mid, -direction])),
        ]

    def spanning(slope: float, midpoint: float) -> np.ndarray:
        return np.array([np.ptp(t), slope * direction, midpoint, 0.0, np.mean(t)])

    r = float(np.mean(z * t))  # Pearson's r of standardized data
    return [
        ("data-spanning", spanning(1.0, mid)),
        # Fitted in the data's units (see _fit_vqeg): rewriting the start for z and t mixes
        # b4 into b5, and curve_fit's path, hence the local minimum it stops in, changes.
        ("VQEG", np.array([y.max(), y.min(), x.mean(), 0.1, 0.1])),
        ("linear", np.array([0.1 * direction, direction, 0.0, r, 0.0])),
        ("steep", spanning(3.0, mid)),
        ("shallow", spanning(0.3, mid)),
        ("lower-quartile", spanning(2.0, float(np.quantile(z, 0.25)))),
        ("upper-quartile", spanning(2.0, float(np.quantile(z, 0.75)))),
    ]


#: A later start replaces an earlier one only when its sum of squares is lower by more than
#: this relative amount: starts that reach the same optimum differ by ~1e-13 relative, and the
#: first (historical) start keeping it leaves the numbers of well-behaved fits unchanged.
_BETTER_SSE = 1e-9


def _fit_standardized(
    z: np.ndarray,
    t: np.ndarray,
    kind: str,
    p0: np.ndarray | None,
    tol: float | None = None,
    raw: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray | None, str]:
    """Fits ``kind`` to standardized data; returns (params or None, failure reason).

    With ``p0`` (a warm start) one fit starts there. Without, every start of :func:`_starts`
    is fitted and the lowest sum of squares wins: on tied or weakly related data a single start
    often hits the evaluation limit or stops in a worse local minimum. ``tol`` sets
    ``curve_fit``'s ``ftol`` and ``xtol`` (default: scipy's). ``raw`` is the ``(x, y)`` that
    ``z`` and ``t`` standardize (default: ``z`` and ``t`` themselves).
    """
    x, y = raw if raw is not None else (z, t)
    n_params = 5 if kind == "5pl" else 4
    if z.size <= n_params:
        return None, f"{z.size} samples cannot determine {n_params} parameters"
    starts = [("warm", np.asarray(p0))] if p0 is not None else _starts(z, t, kind, (x, y))
    best: tuple[float, np.ndarray] | None = None
    reasons = []
    for name, start in starts:
        if name == "VQEG":
            params, reason = _fit_vqeg(x, y, start, z)
        else:
            params, reason = _fit_once(z, t, kind, start, tol)
        if params is None:
            reasons.append(f"{name}: {reason}")
            continue
        sse = float(np.sum((_CURVES[kind](z, *params) - t) ** 2))
        if best is None or sse < best[0] * (1.0 - _BETTER_SSE):
            best = (sse, params)
    if best is not None:
        return best[1], ""
    if len(starts) == 1:
        return None, reasons[0].split(": ", 1)[1]
    by_reason: dict[str, list[str]] = {}
    for text in reasons:
        name, reason = text.split(": ", 1)
        by_reason.setdefault(reason, []).append(name)
    detail = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())
    return None, f"no start of {len(starts)} converged ({detail})"


def _fit_vqeg(
    x: np.ndarray, y: np.ndarray, p0: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray | None, str]:
    """The 5PL fitted as the VQEG-style scripts do it: to the data ``(x, y)`` in its units from
    ``p0`` (in the same units), by ``curve_fit`` with its own finite-difference Jacobian; the
    result is returned rewritten for the standardized ``z`` (and ``t``)."""
    mx, sx, my, sy = float(x.mean()), float(x.std()), float(y.mean()), float(y.std())
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", scipy.optimize.OptimizeWarning)
            b, _ = scipy.optimize.curve_fit(logistic_5pl, x, y, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        return None, f"curve_fit failed: {exc}"
    # The inverse of _to_original_units.
    params = np.array([b[0] / sy, b[1] * sx, (b[2] - mx) / sx, b[3] * sx / sy, 0.0])
    params[4] = (b[4] - my + b[3] * mx) / sy
    fitted = logistic_5pl(z, *params)
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(fitted))):
        return None, "curve_fit returned non-finite parameters"
    if np.ptp(fitted) == 0:
        return None, "the fitted curve is flat"
    return params, ""


def _fit_once(
    z: np.ndarray, t: np.ndarray, kind: str, p0: np.ndarray, tol: float | None
) -> tuple[np.ndarray | None, str]:
    """One ``curve_fit`` from ``p0``; returns (params or None, failure reason)."""
    curve = _CURVES[kind]
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


def _columns(p: np.ndarray) -> list[np.ndarray]:
    """Parameters as (B, 1) columns, broadcasting against (B, n) data."""
    return [p[:, [k]] for k in range(p.shape[1])]


def fit_rows(
    z: np.ndarray,
    t: np.ndarray,
    kind: str,
    p0: np.ndarray,
    tol: float,
    max_iter: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit the ``kind`` logistic to each row of ``(z, t)``, starting every row from ``p0``.

    Args:
        z: (B, n) standardized predictions, one resample per row.
        t: (B, n) standardized scores.
        kind: ``"5pl"`` or ``"4pl"``.
        p0: (k,) starting parameters (the fit on the full data).
        tol: Relative tolerance on the sum of squares and on the parameters.
        max_iter: Jacobian evaluations per row at most.

    Returns:
        ``(params, converged)``: (B, k) parameters and a (B,) mask of rows that met the tolerance
        with finite values.
    """
    curve: Callable[..., np.ndarray] = _CURVES[kind]
    jacobian: Callable[..., np.ndarray] = _JACOBIANS[kind]
    rows, k = z.shape[0], p0.size
    p = np.tile(np.asarray(p0, dtype=np.float64), (rows, 1))
    damping = np.full(rows, 1e-3)
    converged = np.zeros(rows, dtype=bool)
    with np.errstate(all="ignore"):
        residual = curve(z, *_columns(p)) - t
        cost = np.einsum("bn,bn->b", residual, residual)
        eye = np.eye(k)
        for _ in range(max_iter):
            active = ~converged & np.isfinite(cost)
            if not active.any():
                break
            idx = np.flatnonzero(active)
            # (b, k, n), contiguous per row, so the normal equations are batched BLAS products.
            jac = jacobian(z[idx], *_columns(p[idx]), axis=1)
            normal = jac @ jac.transpose(0, 2, 1)
            gradient = (jac @ residual[idx][..., None])[..., 0]
            scale = np.maximum(np.einsum("bii->bi", normal), 1e-12)
            lhs = normal + damping[idx, None, None] * scale[:, :, None] * eye
            try:
                step = np.linalg.solve(lhs, -gradient[..., None])[..., 0]
            except np.linalg.LinAlgError:  # one singular system spoils the batch: row by row
                step = np.stack(
                    [np.linalg.lstsq(a, -g, rcond=None)[0] for a, g in zip(lhs, gradient)]
                )
            trial = p[idx] + step
            trial_residual = curve(z[idx], *_columns(trial)) - t[idx]
            trial_cost = np.einsum("bn,bn->b", trial_residual, trial_residual)
            better = np.isfinite(trial_cost) & (trial_cost <= cost[idx])
            accepted = idx[better]
            small_cost = cost[idx] - trial_cost <= tol * cost[idx]
            small_step = np.linalg.norm(step, axis=1) <= tol * (
                np.linalg.norm(p[idx], axis=1) + tol
            )
            p[accepted] = trial[better]
            residual[accepted] = trial_residual[better]
            cost[accepted] = trial_cost[better]
            damping[idx] = np.where(better, damping[idx] / 3.0, damping[idx] * 4.0)
            converged[idx] = (better & small_cost) | small_step
    converged &= np.isfinite(p).all(axis=1) & np.isfinite(cost)
    return p, converged

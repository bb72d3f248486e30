"""Tests for iqa_bench.stats.correlation: SRCC, KRCC, logistic PLCC, orientation and CIs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from iqa_bench.stats import (
    correlations,
    fit_logistic,
    krcc,
    logistic_4pl,
    logistic_5pl,
    plcc,
    srcc,
)


def _mos_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Quality-like predictions and MOS on 1..5 related by a noisy logistic."""
    rng = np.random.default_rng(seed)
    q = rng.random(n)
    mos = 1 + 4 / (1 + np.exp(-10 * (q - 0.5))) + 0.3 * rng.standard_normal(n)
    return q, mos


def test_srcc_and_krcc_hand_computed() -> None:
    # Ranks (1, 2, 3) vs (1, 3, 2): rho = 1 - 6 * 2 / 24 = 0.5; tau = (2 - 1) / 3.
    assert srcc([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert krcc([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)


def test_srcc_krcc_equal_scipy() -> None:
    q, mos = _mos_data()
    q = np.round(q, 2)  # ties exercise tau-b
    assert srcc(q, mos) == pytest.approx(scipy.stats.spearmanr(q, mos).statistic, abs=1e-9)
    tau_b = scipy.stats.kendalltau(q, mos, variant="b").statistic
    assert krcc(q, mos) == pytest.approx(tau_b, abs=1e-9)


def test_dmos_tracking_metric_gets_positive_correlations() -> None:
    q, mos = _mos_data()
    dmos = 100 - 20 * mos  # higher = worse
    assert srcc(q, dmos, higher_is_better_mos=False) == pytest.approx(srcc(q, mos), abs=1e-12)
    assert krcc(q, dmos, higher_is_better_mos=False) > 0.5
    assert plcc(q, dmos, higher_is_better_mos=False).value > 0.8
    assert srcc(q, dmos, higher_is_better_mos=False) == pytest.approx(
        scipy.stats.spearmanr(q, -dmos).statistic, abs=1e-9
    )


def test_backwards_metric_gets_negative_plcc_after_logistic_fit() -> None:
    # A distance passed as if it were quality: the fitted map is decreasing, so the PLCC of
    # the mapped values keeps the sign of the map and comes out negative.
    q, mos = _mos_data()
    forward = plcc(q, mos)
    backward = plcc(-q, mos)
    assert backward.fit.converged
    assert backward.value < -0.8
    assert backward.value == pytest.approx(-forward.value, abs=1e-6)


@pytest.mark.parametrize("kind", ["5pl", "4pl"])
def test_plcc_equals_pearson_of_fitted_values(kind: str) -> None:
    q, mos = _mos_data()
    res = plcc(q, mos, logistic=kind)
    assert res.fit.converged and res.fit.kind == kind
    assert len(res.fit.params) == int(kind[0])
    expected = scipy.stats.pearsonr(res.fit.predict(q), mos).statistic
    assert res.value == pytest.approx(expected, abs=1e-9)
    assert res.value > scipy.stats.pearsonr(q, mos).statistic


def test_plcc_without_logistic_is_raw_pearson() -> None:
    q, mos = _mos_data()
    res = plcc(q, mos, logistic=None)
    assert res.value == pytest.approx(scipy.stats.pearsonr(q, mos).statistic, abs=1e-12)
    assert res.fit.kind == "none"


def test_fit_logistic_recovers_known_parameters_in_original_units() -> None:
    # Tiny x scale (like an MSE) checks that standardization is undone correctly.
    x = np.linspace(0, 1e-3, 200)
    true = (80.0, 20.0, 4e-4, 1e-4)
    y = logistic_4pl(x, *true) + 0.01 * np.random.default_rng(2).standard_normal(200)
    fit = fit_logistic(x, y, kind="4pl")
    assert fit.converged
    np.testing.assert_allclose(fit.params, true, rtol=2e-3)


def test_fit_logistic_5pl_reproduces_noise_free_curve() -> None:
    x = np.linspace(20, 45, 150)  # a PSNR-like range
    y = logistic_5pl(x, 60.0, 0.4, 32.0, 0.2, 50.0)
    fit = fit_logistic(x, y)
    assert fit.converged
    np.testing.assert_allclose(fit.predict(x), y, atol=1e-5)


def test_constant_predictions_report_nan_without_raising_or_warning() -> None:
    mos = np.linspace(1, 5, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = correlations(np.full(50, 0.7), mos, n_boot=100)
    assert not res.fit.converged
    assert "quality_like is constant" in res.fit.message
    assert np.isnan([res.srcc.value, res.krcc.value, res.plcc.value]).all()
    assert np.isnan([res.plcc.low, res.plcc.high]).all()


def test_failed_fit_falls_back_to_raw_pearson(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_convergence(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Optimal parameters not found: maxfev exceeded")

    monkeypatch.setattr(scipy.optimize, "curve_fit", no_convergence)
    q, mos = _mos_data()
    res = plcc(q, mos)
    assert not res.fit.converged
    assert "did not converge" in res.fit.message and "raw predictions" in res.fit.message
    assert res.value == pytest.approx(scipy.stats.pearsonr(q, mos).statistic, abs=1e-12)


def test_too_few_samples_for_5pl_falls_back_with_message() -> None:
    res = plcc([1, 2, 3, 4], [1, 2, 4, 3])
    assert not res.fit.converged
    assert "4 samples cannot determine 5 parameters" in res.fit.message
    assert res.value == pytest.approx(scipy.stats.pearsonr([1, 2, 3, 4], [1, 2, 4, 3]).statistic)


def test_correlations_values_match_single_functions_and_intervals_bracket_them() -> None:
    q, mos = _mos_data(200)
    res = correlations(q, mos, n_boot=100, seed=1)
    assert res.srcc.value == pytest.approx(srcc(q, mos))
    assert res.krcc.value == pytest.approx(krcc(q, mos))
    assert res.plcc.value == pytest.approx(plcc(q, mos).value)
    for est in (res.srcc, res.krcc, res.plcc):
        assert est.low < est.value < est.high
    assert res.fit_failures == 0 and res.n == 200


def test_correlations_are_reproducible_for_a_seed() -> None:
    q, mos = _mos_data(100)
    a = correlations(q, mos, logistic="4pl", n_boot=100, seed=3)
    b = correlations(q, mos, logistic="4pl", n_boot=100, seed=3)
    assert a == b


def test_correlation_rejects_non_bool_orientation() -> None:
    with pytest.raises(ValueError, match=r"higher_is_better_mos must be True or False, got 'dmos'"):
        srcc([1, 2, 3], [3, 2, 1], higher_is_better_mos="dmos")  # type: ignore[arg-type]


def test_correlation_rejects_nan_mos() -> None:
    with pytest.raises(ValueError, match=r"mos has 1 NaN or infinite value\(s\)"):
        srcc([1, 2, 3], [3, np.nan, 1])


def test_correlation_rejects_too_few_samples() -> None:
    with pytest.raises(ValueError, match=r"quality_like has 2 sample\(s\).*at least 3"):
        krcc([1, 2], [2, 1])


def test_correlation_rejects_unknown_logistic() -> None:
    with pytest.raises(ValueError, match=r"logistic='3pl' is not supported"):
        plcc([1, 2, 3], [1, 2, 3], logistic="3pl")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["5pl", "4pl"])
def test_batched_resample_refits_match_curve_fit_one_by_one(kind: str) -> None:
    from iqa_bench.stats.correlation import RESAMPLE_TOLERANCE, _plcc_oriented, _plcc_rows

    q, mos = _mos_data(400, seed=4)
    _, fit, warm = _plcc_oriented(q, mos, kind)
    assert fit.converged
    idx = np.random.default_rng(0).integers(0, q.size, size=(40, q.size))
    batched, failures = _plcc_rows(q[idx], mos[idx], kind, warm)
    single = [_plcc_oriented(q[i], mos[i], kind, warm, RESAMPLE_TOLERANCE)[0] for i in idx]
    assert failures == 0
    assert np.allclose(batched, single, rtol=0, atol=2e-6), np.abs(batched - single).max()


def test_resamples_the_batched_fit_cannot_settle_are_refitted_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import iqa_bench.stats.correlation as corr

    q, mos = _mos_data(300, seed=5)
    _, _, warm = corr._plcc_oriented(q, mos, "5pl")
    idx = np.random.default_rng(1).integers(0, q.size, size=(12, q.size))
    expected, _ = corr._plcc_rows(q[idx], mos[idx], "5pl", warm)
    refits: list[int] = []
    real = corr._plcc_oriented

    def counting(*args, **kwargs):
        refits.append(1)
        return real(*args, **kwargs)

    def stuck(z, t, kind, p0, tol, max_iter=100):
        params, ok = real_fit_rows(z, t, kind, p0, tol, max_iter)
        ok[::3] = False  # every third resample "does not converge"
        return params, ok

    real_fit_rows = corr.fit_rows
    monkeypatch.setattr(corr, "fit_rows", stuck)
    monkeypatch.setattr(corr, "_plcc_oriented", counting)
    got, failures = corr._plcc_rows(q[idx], mos[idx], "5pl", warm)
    assert len(refits) == 4 and failures == 0
    assert np.allclose(got, expected, atol=2e-6)


def test_batched_fit_recovers_curves_near_the_start_and_flags_hopeless_rows() -> None:
    from iqa_bench.stats.logistic import fit_rows

    # Resamples are refitted from the full-data fit, so their optima lie near the start.
    start = np.array([1.0, 2.0, 0.1, 0.2, 0.0])
    truth = start + np.array([[0.0] * 5, [0.3, -0.4, 0.2, -0.1, 0.2], [0.1] * 5])
    z = np.tile(np.linspace(-2.0, 2.0, 60), (3, 1))
    t = np.stack([logistic_5pl(z[r], *truth[r]) for r in range(3)])
    t[2, 5] = np.nan  # a resample with unusable data
    params, ok = fit_rows(z, t, "5pl", start, 1e-10)
    assert ok.tolist() == [True, True, False]
    fitted = np.stack([logistic_5pl(z[r], *params[r]) for r in range(2)])
    assert np.allclose(fitted, t[:2], atol=1e-6)
    assert np.allclose(params[:2], truth[:2], atol=1e-4)


def _hard_data(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tied (scores to 0.1, MOS to integers) or weakly related data, seeded."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0, 1, n)
    if kind == "tied":
        return np.round(q + rng.normal(0, 0.3, n), 1), np.round(1 + 4 * q + rng.normal(0, 1, n))
    if kind == "weak":
        return q + rng.normal(0, 1, n), 5 * q + rng.normal(0, 1, n)
    mos = 1 + 4 / (1 + np.exp(-8 * (q - 0.5))) + rng.normal(0, 0.2, n)
    return q + rng.normal(0, 0.1, n), mos


def _vqeg_curve_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(SSE, signed PLCC) of curve_fit from the VQEG start max/min(mos), mean(score), 0.1, 0.1."""
    p0 = [y.max(), y.min(), x.mean(), 0.1, 0.1]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        params, _ = scipy.optimize.curve_fit(logistic_5pl, x, y, p0=p0, maxfev=20000)
    fitted = logistic_5pl(x, *params)
    sign = np.sign(scipy.stats.pearsonr(fitted, x).statistic)
    return float(np.sum((fitted - y) ** 2)), float(sign * scipy.stats.pearsonr(fitted, y).statistic)


#: Relative SSE the suite's fit may exceed curve_fit's from the VQEG start by. Measured over
#: 360 seeded sets (_hard_data tied/weak/clean, n = 20, 50, 200, seeds 0-39; the script is in
#: the issue 16 report): largest excess 8.2e-10; MINPACK's default ftol is 1.5e-8.
SSE_SLACK = 1e-8
#: |PLCC difference| where both fits reach the same minimum (SSE within 1e-8): measured at most
#: 9.0e-9 over the same 360 sets.
PLCC_AGREEMENT = 1e-7


@pytest.mark.parametrize(
    ("kind", "n", "seed"),
    [
        # The original single start hit maxfev here and PLCC fell back to raw Pearson.
        ("tied", 20, 95),
        ("tied", 50, 15),
        ("tied", 200, 26),
        ("weak", 20, 48),
        ("weak", 50, 15),
        ("weak", 200, 15),
        # The original start converged, but to a worse local minimum.
        ("weak", 20, 12),
        ("weak", 50, 1),
    ],
)
def test_5pl_fit_on_tied_or_weak_data_is_at_least_as_good_as_curve_fit_from_the_vqeg_start(
    kind: str, n: int, seed: int
) -> None:
    x, y = _hard_data(kind, n, seed)
    res = plcc(x, y)
    assert res.fit.converged, res.fit.message
    sse = float(np.sum((res.fit.predict(x) - y) ** 2))
    reference_sse, _ = _vqeg_curve_fit(x, y)
    assert sse <= reference_sse * (1 + SSE_SLACK)


@pytest.mark.parametrize(("n", "seed"), [(20, 3), (50, 1), (200, 2)])
def test_5pl_fit_equals_curve_fit_from_the_vqeg_start_on_well_behaved_data(
    n: int, seed: int
) -> None:
    x, y = _hard_data("clean", n, seed)
    res = plcc(x, y)
    reference_sse, reference_plcc = _vqeg_curve_fit(x, y)
    sse = float(np.sum((res.fit.predict(x) - y) ** 2))
    # The same minimum: SSE within SSE_SLACK, PLCC within PLCC_AGREEMENT (both measured).
    assert sse == pytest.approx(reference_sse, rel=SSE_SLACK)
    assert res.value == pytest.approx(reference_plcc, abs=PLCC_AGREEMENT)

"""Autocast agrees with float32 within the documented tolerance, and 2AFC scores are identical.

Documented tolerances (docs/PRECISION.md), per sample, ``|d_autocast - d_fp32| <= rel |d| + abs``:

- bf16: learned LPIPS (v0.1, v0.0) ``0.03 |d| + 0.005``; unweighted baselines ``0.08 |d| + 0.005``;
- fp16: learned LPIPS ``0.005 |d| + 0.001``; unweighted baselines ``0.02 |d| + 0.001``.

The 2AFC average agrees to the reported precision (0.1 points), JND mAP within 0.005. Measured
on CPU; the same bounds are checked on CUDA where a GPU is present (``-m gpu``). A dtype that
torch would silently not autocast to is an error, not an fp32 run under that label.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from iqa_bench.device import check_autocast
from iqa_bench.results import load_run
from iqa_bench.runner import RunOptions, run_benchmark
from iqa_bench.stats import jnd_map, twoafc_scores
from tests.conftest import weights_file

METRICS = [
    "lpips-alex",
    "lpips-alex-v0.0",
    "lpips-alex-baseline",
    "lpips-squeeze",
    "lpips-squeeze-v0.0",
    "lpips-squeeze-baseline",
]

#: (dtype, learned or baseline) -> (relative, absolute) bound per sample: 1.5-2.7x the worst
#: difference measured on the synthetic set on CPU (torch 2.14.1; 2.2.2 passes too).
TOLERANCE = {
    ("bf16", "learned"): (0.03, 0.005),
    ("bf16", "baseline"): (0.08, 0.005),
    ("fp16", "learned"): (0.005, 0.001),
    ("fp16", "baseline"): (0.02, 0.001),
}


def _score(tmp_path, dtype: str, device: str = "cpu"):
    opts = RunOptions(dtype=dtype, progress=False, decode_cache=False, device=device)
    run_benchmark(
        "synthetic",
        METRICS,
        tmp_path / f"{device}-{dtype}",
        opts,
        data_root=tmp_path / "data",
        log=lambda m: None,
    )
    return load_run(tmp_path / f"{device}-{dtype}")


def _needs_trunks() -> None:
    weights_file("alexnet-owt-7be5be79-features.pth")
    weights_file("squeezenet1_1-b8a52dc0-features.pth")


def _assert_within_tolerance(full_run, half_run, dtype: str) -> None:
    for metric in METRICS:
        rel, abs_ = TOLERANCE[dtype, "baseline" if metric.endswith("-baseline") else "learned"]
        full, half = full_run.twoafc(metric), half_run.twoafc(metric)
        jf, jh = full_run.jnd(metric), half_run.jnd(metric)
        for task, d, e in (
            ("2afc", np.r_[full.d0, full.d1], np.r_[half.d0, half.d1]),
            ("jnd", jf.d, jh.d),
        ):
            assert not np.array_equal(d, e), f"{metric} {task}: autocast was not applied"
            worst = np.max(np.abs(d - e) - rel * np.abs(d))
            assert worst <= abs_, (
                f"{metric} {task} {dtype}: exceeds {rel}|d| by {worst:.2e} (allowed {abs_})"
            )
        a = twoafc_scores(full.d0, full.d1, full.h, full.subset).mean * 100
        b = twoafc_scores(half.d0, half.d1, half.h, half.subset).mean * 100
        assert round(a, 1) == round(b, 1), metric
        assert jnd_map(jf.d, jf.same, jf.subset).mean == pytest.approx(
            jnd_map(jh.d, jh.same, jh.subset).mean, abs=0.005
        )


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    _needs_trunks()
    tmp = tmp_path_factory.mktemp("autocast")
    return tmp, _score(tmp, "fp32")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_autocast_matches_float32_within_documented_tolerance(float32_run, dtype):
    try:
        check_autocast(torch.device("cpu"), dtype)
    except ValueError as err:
        pytest.skip(f"this torch cannot autocast to {dtype} on CPU: {err}")
    tmp, full_run = float32_run
    _assert_within_tolerance(full_run, _score(tmp, dtype), dtype)


@pytest.mark.gpu
def test_cuda_autocast_matches_float32_within_documented_tolerance(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _needs_trunks()
    full_run = _score(tmp_path, "fp32", "cuda")  # IEEE float32: the runner turns TF32 off
    for dtype in ("bf16", "fp16"):
        _assert_within_tolerance(full_run, _score(tmp_path, dtype, "cuda"), dtype)


def _silently_off(device_type, dtype=None, **kwargs):
    """``torch.autocast`` where torch lacks the dtype on the device: warns, does nothing."""
    return contextlib.nullcontext()


class _Refusing:
    """``torch.autocast`` as CUDA answers a dtype the GPU lacks."""

    def __init__(self, device_type, dtype=None, **kwargs):
        raise RuntimeError("Current CUDA Device does not support bfloat16.")


@pytest.mark.parametrize(
    ("fake", "message"),
    [(_silently_off, "silently compute in float32"), (_Refusing, "not available")],
)
def test_dtype_that_torch_would_not_autocast_to_is_an_error(tmp_path, monkeypatch, fake, message):
    monkeypatch.setattr(torch, "autocast", fake)
    opts = RunOptions(dtype="fp16", progress=False, device="cpu")
    with pytest.raises(ValueError, match=rf"dtype: .*fp16.*{message}.*--dtype fp32 or bf16"):
        run_benchmark("synthetic", ["l2"], tmp_path / "run", opts, data_root=tmp_path / "data")
    assert not (tmp_path / "run").exists(), "nothing should be written before the check"


def test_available_autocast_dtypes_pass_the_check():
    check_autocast(torch.device("cpu"), "fp32")  # no autocast: nothing to check
    check_autocast(torch.device("cpu"), "bf16")

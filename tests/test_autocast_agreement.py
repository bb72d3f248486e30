"""Autocast agrees with float32 within the documented tolerance, and 2AFC scores are identical.

Documented tolerance (README, "Precision"): per sample |d_autocast - d_fp32| <= 0.03 |d| + 0.005
for bf16 on CPU; the 2AFC average agrees to the reported precision (0.1 points).
"""

from __future__ import annotations

import numpy as np
import pytest

from iqa_bench.results import load_run
from iqa_bench.runner import RunOptions, run_benchmark
from iqa_bench.stats import jnd_map, twoafc_scores
from tests.conftest import weights_file

METRICS = ["lpips-alex", "lpips-squeeze", "lpips-alex-baseline"]


@pytest.mark.slow
def test_bf16_autocast_matches_float32_within_documented_tolerance(tmp_path):
    weights_file("alexnet-owt-7be5be79-features.pth")
    weights_file("squeezenet1_1-b8a52dc0-features.pth")
    runs = {}
    for dtype in ("fp32", "bf16"):
        opts = RunOptions(dtype=dtype, progress=False, decode_cache=False)
        run_benchmark(
            "synthetic",
            METRICS,
            tmp_path / dtype,
            opts,
            data_root=tmp_path / "data",
            log=lambda m: None,
        )
        runs[dtype] = load_run(tmp_path / dtype)
    for metric in METRICS:
        full, half = runs["fp32"].twoafc(metric), runs["bf16"].twoafc(metric)
        d, e = np.r_[full.d0, full.d1], np.r_[half.d0, half.d1]
        assert not np.array_equal(d, e), "autocast was not applied"
        assert np.all(np.abs(d - e) <= 0.03 * np.abs(d) + 0.005), metric
        a = twoafc_scores(full.d0, full.d1, full.h, full.subset).mean * 100
        b = twoafc_scores(half.d0, half.d1, half.h, half.subset).mean * 100
        assert round(a, 1) == round(b, 1), metric
        jf, jh = runs["fp32"].jnd(metric), runs["bf16"].jnd(metric)
        assert np.all(np.abs(jf.d - jh.d) <= 0.03 * np.abs(jf.d) + 0.005), metric
        assert jnd_map(jf.d, jf.same, jf.subset).mean == pytest.approx(
            jnd_map(jh.d, jh.same, jh.subset).mean, abs=0.005
        )

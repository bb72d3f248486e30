"""``torch.compile`` of network metrics: same numbers as eager execution, recorded in the manifest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import iqa_bench
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.runner import RunOptions, run_benchmark, store


def _pairs(n: int, size: int = 64, device: str = "cpu"):
    g = torch.Generator().manual_seed(n)
    x = torch.rand(n, 3, size, size, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x.to(device), y.to(device)


def _compiled_matches_eager(device: str) -> None:
    metric = iqa_bench.create_metric("lpips-alex", pretrained=False, device=device)
    metric.check_inputs = False
    metric.use_channels_last()
    batches = [_pairs(4, device=device), _pairs(3, device=device), _pairs(4, device=device)]
    with torch.inference_mode():
        eager = [metric(x, y) for x, y in batches]
        assert metric.compile_for_inference() is True
        assert "embed" in vars(metric) and "compare" in vars(metric)
        compiled = [metric(x, y) for x, y in batches]
    for e, c in zip(eager, compiled):
        assert torch.allclose(c, e, rtol=1e-5, atol=1e-6), (c, e)


@pytest.mark.slow
def test_compiled_lpips_matches_eager_across_batch_shapes_on_cpu():
    _compiled_matches_eager("cpu")


@pytest.mark.gpu
def test_compiled_lpips_matches_eager_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pytest.importorskip("lpips", reason="the lpips package supplies lpips-alex's linear layers")
    from iqa_bench.device import cuda_float32_precision

    # IEEE float32: with TF32 eager and compiled code may pick convolution algorithms that
    # differ by far more than float32 rounding.
    with cuda_float32_precision("fp32"):
        _compiled_matches_eager("cuda")


def test_pixel_metrics_are_left_eager_and_cuda_graph_modes_are_refused():
    l2 = iqa_bench.create_metric("l2")
    assert l2.compile_for_inference() is False
    assert "embed" not in vars(l2)
    with pytest.raises(ValueError, match="compile mode 'reduce-overhead'.*CUDA-graph"):
        l2.compile_for_inference("reduce-overhead")


def test_runner_rejects_an_unknown_compile_mode(tmp_path):
    with pytest.raises(ValueError, match="compile: 'fast' is not one of default"):
        run_benchmark("synthetic", ["l2"], tmp_path, RunOptions(progress=False, compile="fast"))


@pytest.mark.slow
@pytest.mark.weights
def test_compiled_run_equals_eager_run_and_says_so_in_the_manifest(tmp_path, alex_weights):
    root = tmp_path / "bapps"
    make_bapps_layout(root, twoafc={"cnn": 7}, jnd={"cnn": 5}, seed=5)
    metrics = ["l2", "lpips-alex-baseline"]
    runs = {}
    for mode in (None, "default"):
        opts = RunOptions(progress=False, batch_size=4, compile=mode)
        runs[mode] = run_benchmark(str(root), metrics, tmp_path / str(mode), opts, log=print)
    manifest = runs["default"].manifest
    assert manifest["compile"] == "default" and runs[None].manifest["compile"] is None
    assert manifest["metrics"]["lpips-alex-baseline"]["compiled"] == "default"
    assert manifest["metrics"]["l2"]["compiled"] is None  # schema 2 writes every field
    for name in metrics:
        for task, field in (("2afc", "d0"), ("2afc", "d1"), ("jnd", "d")):
            eager = np.load(store.final_path(runs[None].run_dir, name, task))[field]
            compiled = np.load(store.final_path(runs["default"].run_dir, name, task))[field]
            assert np.allclose(compiled, eager, rtol=1e-5, atol=1e-7), (name, task)

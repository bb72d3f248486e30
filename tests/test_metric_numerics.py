"""Output shapes, orientation, autocast robustness and gradients of every named metric."""

from __future__ import annotations

import functools

import pytest
import torch

import iqa_bench
from iqa_bench.weights import WeightsUnavailableError

ALL = [m.name for m in iqa_bench.list_metrics()]
NATIVE = [m.name for m in iqa_bench.list_metrics() if m.library is None]
BRIDGED = [m.name for m in iqa_bench.list_metrics() if m.library is not None]
DEEP = ["lpips-alex", "lpips-squeeze", "lpips-vgg", "lpips-alex-baseline", "vgg16-conv4_3", "dists"]


@functools.cache
def _make(name: str):
    """Real weights where present; otherwise the same metric on a random trunk."""
    try:
        return iqa_bench.create_metric(name)
    except WeightsUnavailableError:
        return iqa_bench.create_metric(name, pretrained=False)


@pytest.mark.parametrize("name", ALL)
def test_every_named_metric_returns_one_value_per_image(name):
    metric = _make(name)
    side = max(64, metric.min_size)  # MS-SSIM's five scales need 161 px
    x = torch.rand(3, 3, side, side)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        out = metric(x, y)
    assert out.shape == (3,)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_orientation_ranks_a_stronger_distortion_as_worse(name):
    metric = _make(name)
    torch.manual_seed(0)
    side = max(64, metric.min_size)
    x = torch.rand(2, 3, side, side)
    noise = torch.randn_like(x)
    weak, strong = (x + 0.02 * noise).clamp(0, 1), (x + 0.3 * noise).clamp(0, 1)
    with torch.no_grad():
        d_weak, d_strong = metric(x, weak), metric(x, strong)
    if metric.higher_is_better:
        assert (d_weak > d_strong).all()
    else:
        assert (d_weak < d_strong).all()


@pytest.mark.parametrize("name", DEEP)
def test_bf16_autocast_on_cpu_stays_finite_and_close_to_float32(name):
    metric = _make(name)
    torch.manual_seed(0)
    x = torch.rand(4, 3, 64, 64)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        full = metric(x, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = metric(x, y)
    assert half.dtype == torch.float32, "feature normalisation and distances must stay float32"
    assert torch.isfinite(half).all()
    assert torch.allclose(half, full, rtol=0.05, atol=1e-3), (half, full)


@pytest.mark.parametrize("name", [n for n in NATIVE if not n.endswith(("-lab", "-paper"))])
def test_gradients_flow_and_are_finite_at_identical_inputs(name):
    metric = _make(name)
    assert metric.is_differentiable
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    metric(x, x.detach()).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    y = torch.rand(2, 3, 64, 64)
    x.grad = None
    metric(x, y).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", BRIDGED)
def test_bridged_metrics_pass_gradients_to_x_exactly_when_declared_differentiable(name):
    # At x == y the libraries' own gradients may be NaN (piq's GMSD and MDSI take the square root
    # of a zero deviation; seen here), so only distinct inputs are checked: the bridge passes the
    # library's autograd graph through unchanged.
    metric = _make(name)
    side = max(64, metric.min_size)
    x = torch.rand(2, 3, side, side, requires_grad=True)
    out = metric(x, torch.rand(2, 3, side, side))
    if not metric.is_differentiable:  # pyiqa scores without a graph unless built as a loss
        assert not out.requires_grad
        return
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_reference_uint8_metrics_declare_themselves_not_differentiable():
    assert not iqa_bench.create_metric("l2-lab").is_differentiable
    assert not iqa_bench.create_metric("ssim-paper").is_differentiable


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_matches_float32(dtype):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pytest.importorskip("lpips", reason="the lpips package supplies lpips-alex's linear layers")
    metric = iqa_bench.create_metric("lpips-alex", device="cuda", pretrained=False)
    x = torch.rand(8, 3, 64, 64, device="cuda")
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        full = metric(x, y)
        with torch.autocast("cuda", dtype=dtype):
            half = metric(x, y)
    assert torch.isfinite(half).all() and torch.allclose(half, full, rtol=0.05, atol=1e-3)


def test_normalised_features_of_an_all_zero_position_have_a_finite_gradient():
    from iqa_bench.functional import normalize_features

    feat = torch.zeros(1, 4, 2, 2)
    feat[0, :, 0, 0] = torch.tensor([3.0, 4.0, 0.0, 0.0])
    feat.requires_grad_(True)
    out = normalize_features(feat)
    assert torch.equal(out[0, :, 1, 1].detach(), torch.zeros(4))
    assert torch.allclose(out[0, :2, 0, 0].detach(), torch.tensor([0.6, 0.8]))
    out.sum().backward()
    assert torch.isfinite(feat.grad).all()


def test_lpips_distance_does_not_depend_on_memory_layout():
    from iqa_bench.functional import lpips_distance, normalize_features

    torch.manual_seed(0)
    shapes = [(3, 8, 9, 7), (3, 16, 3, 3)]
    f0 = [normalize_features(torch.randn(s)) for s in shapes]
    f1 = [normalize_features(torch.randn(s)) for s in shapes]
    lin = [torch.rand(s[1]) for s in shapes]
    expected = sum(
        ((a - b) ** 2 * w.view(1, -1, 1, 1)).sum(1).mean((1, 2)) for a, b, w in zip(f0, f1, lin)
    )

    def cl(fs):
        return [f.contiguous(memory_format=torch.channels_last) for f in fs]

    for a, b in ((f0, f1), (cl(f0), cl(f1)), (cl(f0), f1)):
        assert torch.allclose(lpips_distance(a, b, lin), expected, rtol=1e-5, atol=1e-7)
        assert torch.allclose(
            lpips_distance(a, b), sum(((x - y) ** 2).sum(1).mean((1, 2)) for x, y in zip(a, b))
        )

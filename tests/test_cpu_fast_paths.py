"""CPU fast paths of trunk metrics: per-convolution layout, fused input scaling, one trunk pass per
pair, allocation-free LPIPS head, and the runner's allocator setting. Each must leave values as
they were (to float32 rounding) and be the path actually taken."""

from __future__ import annotations

import platform

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import iqa_bench
from iqa_bench.functional.lpips import lpips_distance, normalize_features
from iqa_bench.metrics import layout, trunk
from iqa_bench.metrics.layout import SmallMapConv2d, adapt_conv_layouts, runs_in_nchw


def _conv(cin=8, cout=6, k=3) -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(cin, cout, k, padding=k // 2).requires_grad_(False)


def test_small_map_conv_runs_nchw_on_small_maps_and_channels_last_on_large():
    conv = _conv()
    plain = _conv()
    conv.to(memory_format=torch.channels_last)
    assert adapt_conv_layouts(conv) == 1 and type(conv) is SmallMapConv2d
    for side, nchw in ((3, True), (4, True), (5, False), (16, False)):
        x = torch.rand(2, 8, side, side).contiguous(memory_format=torch.channels_last)
        assert runs_in_nchw(conv, x) is nchw
        calls = []
        original = conv._conv_forward

        def spy(inp, weight, bias, calls=calls, original=original):
            calls.append((inp.is_contiguous(), weight is conv.weight_nchw))
            return original(inp, weight, bias)

        conv._conv_forward = spy
        out = conv(x)
        del conv._conv_forward
        if nchw:
            assert calls == [(True, True)]  # contiguous input, the NCHW weight copy
        else:
            assert len(calls) == 1 and calls[0][1] is False
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, plain(x), rtol=1e-5, atol=1e-6)


def test_adapt_conv_layouts_keeps_names_and_skips_pointwise_convolutions():
    net = torchvision.models.squeezenet1_1().features.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    spatial = sum(isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) for m in net.modules())
    assert adapt_conv_layouts(net) == spatial == 9
    after = net.state_dict()
    assert list(after) == list(before)  # weight_nchw is not persistent
    assert all(torch.equal(after[k], before[k]) for k in before)
    pointwise = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert pointwise and all(type(m) is nn.Conv2d for m in pointwise)


def test_small_map_path_is_bypassed_for_trainable_weights():
    conv = _conv().requires_grad_(True)
    adapt_conv_layouts(conv)
    with torch.no_grad():
        conv.weight.mul_(2)  # the NCHW copy is now stale; a trainable weight must not read it
    x = torch.rand(1, 8, 3, 3)
    out = conv(x)
    torch.testing.assert_close(out, F.conv2d(x, conv.weight, conv.bias, padding=1))
    out.sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_small_map_path_is_cpu_only_and_follows_the_limit(monkeypatch):
    conv = _conv()
    adapt_conv_layouts(conv)
    x = torch.rand(1, 8, 4, 4)
    assert runs_in_nchw(conv, x)
    monkeypatch.setattr(layout, "SMALL_MAP_POSITIONS", 15)
    assert not runs_in_nchw(conv, x)
    assert not runs_in_nchw(conv, torch.rand(1, 8, 4, 4, device="meta"))


def _alex(**kw):
    metric = iqa_bench.create_metric("lpips-alex", pretrained=False, **kw)
    metric.check_inputs = False
    return metric


def _pairs(n=3, size=64):
    g = torch.Generator().manual_seed(n)
    x = torch.rand(n, 3, size, size, generator=g)
    return x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)


@pytest.mark.parametrize("channels_last", [False, True])
def test_pair_forward_runs_one_trunk_pass_within_the_pixel_budget(monkeypatch, channels_last):
    metric = _alex()
    if channels_last:
        metric.use_channels_last()
    x, y = _pairs()
    batches = []
    original = metric.trunk.forward
    monkeypatch.setattr(metric.trunk, "forward", lambda t: batches.append(len(t)) or original(t))
    with torch.inference_mode():
        joint = metric(x, y)
        assert batches == [6]
        monkeypatch.setattr(trunk, "JOINT_PASS_MAX_PIXELS", 6 * 64 * 64 - 1)
        separate = metric(x, y)
        assert batches == [6, 3, 3]
        direct = metric.compare(metric.embed(x), metric.embed(y))
    torch.testing.assert_close(joint, separate, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(joint, direct, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["lpips-alex", "lpips-alex-v0.0", "vgg16-conv4_3"])
def test_fused_input_scaling_matches_the_reference_arithmetic(name):
    metric = iqa_bench.create_metric(name, pretrained=False)
    metric.use_channels_last()
    x, y = _pairs(2, 16)
    expected = []
    for b in (x, y):
        if metric.to_pm1:
            b = 2 * b - 1
        expected.append((b - metric.shift) / metric.scale)
    out = trunk.normalise_input(metric, x, y)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, torch.cat(expected), rtol=1e-6, atol=1e-6)


def test_fused_input_scaling_keeps_the_gradient_to_the_image():
    metric = _alex()
    x, y = _pairs(2, 32)
    x.requires_grad_(True)
    metric(x, y).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_lpips_head_leaves_its_inputs_untouched_and_channels_last_norm_agrees():
    g = torch.Generator().manual_seed(0)
    raw = [torch.rand(2, 5, 4, 4, generator=g), torch.rand(2, 7, 2, 2, generator=g)]
    raw[0][0, :, 1, 1] = 0  # an all-zero position: value 0, finite gradient
    cl = [f.contiguous(memory_format=torch.channels_last) for f in raw]
    for a, b in zip(raw, cl):
        assert b.stride(1) == 1 and a.stride(1) != 1  # the two normalisation branches
        torch.testing.assert_close(normalize_features(b), normalize_features(a))
    f0 = [normalize_features(f) for f in cl]
    f1 = [normalize_features(f.flip(0)) for f in cl]
    kept = [t.clone() for t in f0 + f1]
    lpips_distance(f0, f1)
    assert all(torch.equal(t, k) for t, k in zip(f0 + f1, kept))
    leaf = cl[0].clone().requires_grad_(True)
    lpips_distance([normalize_features(leaf)], [f1[0]]).sum().backward()
    assert torch.isfinite(leaf.grad).all()


# In a fresh process: the setting is process-wide and must not leak into (or from) other tests.
_ALLOCATOR_RUNS = """
import json, sys
from iqa_bench.runner import RunOptions, run_benchmark
from iqa_bench.runner.allocator import keep_freed_memory
opts = RunOptions(progress=False, batch_size=8)
out = sys.argv[1]
notes = [run_benchmark("synthetic", ["l2"], out + "/a", opts, log=print).manifest]
state = keep_freed_memory()
notes.append(run_benchmark("synthetic", ["l2"], out + "/b", opts, log=print).manifest)
print(json.dumps([state] + [m["environment"]["cpu_allocator"] for m in notes]))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="keep_freed_memory needs glibc")
@pytest.mark.slow  # 7-20 s on a 2-core CPU
def test_runs_record_the_allocator_setting_in_force_and_never_make_it(tmp_path):
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _ALLOCATOR_RUNS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    state, first, second = json.loads(proc.stdout.splitlines()[-1])
    assert first == "default (not requested)"  # a library call left glibc's defaults alone
    assert state["applied"] is True and state["threshold_bytes"] == 1 << 30
    assert second.endswith("keeps freed blocks up to 1024 MiB")  # read after the entry point set it


def test_cli_entry_point_sets_the_allocator_unless_told_not_to(monkeypatch, tmp_path):
    from iqa_bench import cli
    from iqa_bench.runner import allocator

    calls = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append(1))
    monkeypatch.setattr("iqa_bench.runner.run_benchmark", lambda *a, **k: None)
    for flags, set_it in (([], True), (["--return-freed-memory"], False)):
        calls.clear()
        args = cli.build_parser().parse_args(["run", "--dataset", "synthetic", *flags])
        cli._run(args, download=False)
        assert calls == ([1] if set_it else [])


def test_lpips_compare_features_consumes_fresh_features_in_place_with_equal_values():
    metric = _alex(device="cpu")
    metric.use_channels_last()
    x, y = _pairs()
    with torch.inference_mode():
        fx, fy = metric.features(x), metric.features(y)
        expected = metric.compare(metric.embed_features(fx), metric.embed_features(fy))
        before = {t: f.clone() for t, f in fx.items()}
        got = metric.compare_features(fx, fy)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-8)
    assert not any(torch.equal(fx[t], before[t]) for t in fx)  # consumed: no copies were made


def test_lpips_compare_features_copies_when_taps_share_storage_or_need_grad():
    metric = _alex()
    x, y = _pairs()
    with torch.inference_mode():
        fx, fy = metric.features(x), metric.features(y)
        expected = metric.compare(metric.embed_features(fx), metric.embed_features(fy))
        # Every tap a view into one storage: normalising one in place could corrupt another.
        flat = torch.cat([f.flatten() for f in fx.values()])
        views, start = {}, 0
        for tap, f in fx.items():
            views[tap] = flat[start : start + f.numel()].view(f.shape)
            start += f.numel()
        kept = flat.clone()
        got = metric.compare_features(views, fy)
    assert torch.equal(flat, kept)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    # Autograd: out-of-place, and the gradient reaches the image.
    xg = x.clone().requires_grad_(True)
    metric.compare_features(metric.features(xg), metric.features(y)).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0

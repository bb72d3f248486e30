"""Bad input is a clear ValueError that names the argument and the fix."""

from __future__ import annotations

import pytest
import torch

import iqa_bench


@pytest.fixture(scope="module")
def lpips_alex():
    return iqa_bench.create_metric("lpips-alex", pretrained=False)


@pytest.fixture(scope="module")
def l2():
    return iqa_bench.create_metric("l2")


def test_values_in_minus_one_to_one_are_rejected_with_a_hint(lpips_alex):
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with pytest.raises(ValueError, match=r"x: values must lie in \[0, 1\].*did you pass \[-1, 1\]"):
        lpips_alex(x, x.clamp(0, 1))


def test_values_in_0_255_are_rejected_with_a_hint(l2):
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(
        ValueError, match=r"y: values must lie in \[0, 1\].*did you pass \[0, 255\]\? Divide by 255"
    ):
        l2(x, x * 255)


def test_integer_images_are_rejected(l2):
    x = (torch.rand(1, 3, 8, 8) * 255).to(torch.uint8)
    with pytest.raises(ValueError, match=r"x: expected float RGB.*x.float\(\) / 255"):
        l2(x, x)


def test_missing_batch_dimension_is_rejected(l2):
    with pytest.raises(ValueError, match=r"expected shape \(N, 3, H, W\).*unsqueeze\(0\)"):
        l2(torch.rand(3, 8, 8), torch.rand(3, 8, 8))


def test_channels_last_input_is_rejected(l2):
    with pytest.raises(ValueError, match=r"3 RGB channels.*permute\(0, 3, 1, 2\)"):
        l2(torch.rand(1, 8, 8, 3), torch.rand(1, 8, 8, 3))


def test_wrong_channel_count_is_rejected(l2):
    with pytest.raises(ValueError, match=r"expected 3 RGB channels.*expand"):
        l2(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_mismatched_sizes_are_rejected(l2):
    with pytest.raises(ValueError, match=r"same shape.*\(1, 3, 8, 8\) and \(1, 3, 8, 9\)"):
        l2(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_nan_input_is_rejected(l2):
    x = torch.rand(1, 3, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x: contains NaN"):
        l2(x, x)


def test_images_smaller_than_the_trunk_accepts_are_rejected(lpips_alex):
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(
        ValueError, match=r"16x16 are smaller than 'lpips-alex' accepts \(at least 31x31\)"
    ):
        lpips_alex(x, x)


def test_smallest_accepted_size_really_works(lpips_alex):
    size = lpips_alex.min_size
    x = torch.rand(1, 3, size, size)
    assert lpips_alex(x, x).shape == (1,)
    with pytest.raises(ValueError, match="smaller than"):
        lpips_alex(x[..., :-1, :-1], x[..., :-1, :-1])


def test_images_smaller_than_the_ssim_window_are_rejected():
    with pytest.raises(ValueError, match=r"5x5 are smaller than 'ssim' accepts \(at least 11x11\)"):
        iqa_bench.create_metric("ssim")(torch.rand(1, 3, 5, 5), torch.rand(1, 3, 5, 5))


def test_unknown_metric_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"unknown metric 'lpips-alx'\. Did you mean 'lpips-alex'"):
        iqa_bench.create_metric("lpips-alx")


def test_unknown_metric_parameter_is_rejected():
    with pytest.raises(ValueError, match=r"unknown key 'versoin'.*Did you mean 'version'"):
        iqa_bench.create_metric("lpips-alex", versoin="0.1")


def test_bad_parameter_value_is_rejected():
    with pytest.raises(ValueError, match=r"key 'version': '0.2' is not one of '0.1', '0.0'"):
        iqa_bench.create_metric("lpips-alex", version="0.2", pretrained=False)


@pytest.mark.weights
@pytest.mark.parametrize("name", ["lpips-alex", "lpips-alex-baseline"])
def test_float64_images_score_as_their_float32_values_in_lpips(name, alex_weights):
    metric = iqa_bench.create_metric(name)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 64, 64, generator=gen), torch.rand(2, 3, 64, 64, generator=gen)
    # float64 copies of float32 values convert back exactly, so the scores must be identical.
    assert torch.equal(metric(x.double(), y.double()), metric(x, y))


def test_float64_images_reach_a_random_trunk_in_its_dtype():
    metric = iqa_bench.create_metric("lpips-squeeze", pretrained=False, lpips=False)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 48, 48, generator=gen, dtype=torch.float64)
    y = torch.rand(1, 3, 48, 48, generator=gen, dtype=torch.float64)
    assert torch.equal(metric(x, y), metric(x.float(), y.float()))
    x.requires_grad_(True)
    metric(x, y).sum().backward()  # gradients flow back to the float64 input, in its dtype
    assert x.grad is not None and x.grad.dtype == torch.float64 and x.grad.abs().sum() > 0

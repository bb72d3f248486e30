"""Classical metrics against scikit-image and the reference package's own baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import iqa_bench
from iqa_bench.functional import (
    l2_lab,
    lab_of_reference_uint8,
    quantize_uint8_reference,
    rgb_to_lab,
    ssim_from_stats,
    ssim_stats,
)


def _natural_pairs(n: int = 4, size: tuple[int, int] = (64, 48), seed: int = 0):
    rng = np.random.default_rng(seed)
    img = data.astronaut()
    out0, out1 = [], []
    for _ in range(n):
        r, c = rng.integers(0, 400, size=2)
        a = img[r : r + size[0], c : c + size[1]].astype(np.float64) / 255
        noise = rng.normal(0, rng.uniform(0.01, 0.2), a.shape)
        out0.append(a)
        out1.append(np.clip(a + noise, 0, 1))
    to_t = lambda arr: torch.from_numpy(np.stack(arr)).permute(0, 3, 1, 2).float()
    return to_t(out0), to_t(out1)


def _np(t: torch.Tensor, k: int) -> np.ndarray:
    return t[k].permute(1, 2, 0).double().numpy()


def test_ssim_matches_skimage_gaussian_convention():
    x, y = _natural_pairs()
    got = iqa_bench.create_metric("ssim")(x, y)
    for k in range(len(x)):
        want = structural_similarity(
            _np(x, k),
            _np(y, k),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=-1,
        )
        assert float(got[k]) == pytest.approx(want, abs=1e-5)


def test_ssim_paper_matches_skimage_defaults_on_reference_uint8():
    x, y = _natural_pairs(size=(64, 64))
    got = iqa_bench.create_metric("ssim-paper")(x, y)
    xq, yq = quantize_uint8_reference(x), quantize_uint8_reference(y)
    for k in range(len(x)):
        # The reference calls skimage on 0..255 floats with data_range=255 and default window.
        want = structural_similarity(
            _np(xq, k) * 255, _np(yq, k) * 255, data_range=255.0, channel_axis=-1
        )
        assert float(got[k]) == pytest.approx(want, abs=1e-5)


def test_psnr_matches_skimage():
    x, y = _natural_pairs()
    got = iqa_bench.create_metric("psnr")(x, y)
    for k in range(len(x)):
        want = peak_signal_noise_ratio(_np(x, k), _np(y, k), data_range=1.0)
        assert float(got[k]) == pytest.approx(want, abs=1e-5)


def test_psnr_of_identical_images_is_infinite_with_zero_gradient():
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    value = iqa_bench.create_metric("psnr")(x, x.detach())
    assert torch.isinf(value).all()
    value.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_l2_is_rgb_mean_squared_error():
    x, y = _natural_pairs()
    got = iqa_bench.create_metric("l2")(x, y)
    want = ((x.double() - y.double()) ** 2).mean(dim=(1, 2, 3))
    assert torch.allclose(got, want, atol=1e-12)


def test_rgb_to_lab_matches_skimage():
    from skimage.color import rgb2lab

    x, _ = _natural_pairs(n=2)
    lab = rgb_to_lab(x.double())
    for k in range(2):
        np.testing.assert_allclose(lab[k].permute(1, 2, 0).numpy(), rgb2lab(_np(x, k)), atol=1e-8)


def _plain_rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """skimage's rgb2lab steps, one out-of-place torch operation each (rgb_to_lab's definition)."""
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor(
        [
            [0.412453, 0.357580, 0.180423],
            [0.212671, 0.715160, 0.072169],
            [0.019334, 0.119193, 0.950227],
        ],
        dtype=x.dtype,
    )
    xyz = torch.einsum("ij,njhw->nihw", m, linear)
    xyz = xyz / torch.tensor([0.95047, 1.0, 1.08883], dtype=x.dtype).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def _every_level_and_dark_pixels() -> torch.Tensor:
    """Every uint8 level in every channel, random colours, and near-black pixels (the linear
    branches of both the sRGB curve and Lab's f)."""
    levels = torch.arange(256, dtype=torch.float32) / 255
    grid = torch.stack([levels.roll(17 * c) for c in range(3)]).view(1, 3, 16, 16)
    rand = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    rand[:, :, :4] *= 0.02
    return torch.cat([grid, rand])


def test_lab_of_reference_uint8_equals_plain_conversion_bit_for_bit():
    """The 256-entry linearisation table and the in-place steps change no bit of l2-lab."""
    nchw = _every_level_and_dark_pixels()
    # Decoded batches are often channels-last views; the colour product's rounding follows layout.
    for x in (nchw, nchw.contiguous(memory_format=torch.channels_last)):
        plain = _plain_rgb_to_lab(quantize_uint8_reference(x).double())
        assert torch.equal(lab_of_reference_uint8(x), plain)
        assert torch.equal(rgb_to_lab(quantize_uint8_reference(x).double()), plain)
        assert torch.equal(rgb_to_lab(x.double()), _plain_rgb_to_lab(x.double()))
        assert torch.equal(lab_of_reference_uint8(x.double()), plain)  # float64 in, same levels
        single = lab_of_reference_uint8(x, torch.float32)
        assert torch.equal(single, _plain_rgb_to_lab(quantize_uint8_reference(x)))


def test_rgb_to_lab_keeps_the_gradient_and_its_values():
    x = _every_level_and_dark_pixels()[:2, :, :3, :3].double().requires_grad_()
    lab = rgb_to_lab(x)
    assert torch.equal(lab.detach(), _plain_rgb_to_lab(x.detach()))
    assert torch.autograd.gradcheck(rgb_to_lab, (x,))


def test_ssim_from_stats_equals_the_textbook_formula_bit_for_bit():
    x, y = _natural_pairs(n=3)
    x, y = x.double(), y.double()
    x[0] = 0  # a black image: zero means and variances
    for window, sample_covariance in (("gaussian", False), ("uniform", True)):
        sx, sy = ssim_stats(x, window=window), ssim_stats(y, window=window)
        n = sx.win_size**2
        cov = n / (n - 1) if sample_covariance else 1.0
        ux, uy = sx.mean, sy.mean
        vx = cov * (sx.mean_of_square - ux * ux)
        vy = cov * (sy.mean_of_square - uy * uy)
        vxy = cov * (sx.blur(x * y) - ux * uy)
        c1, c2 = 0.01**2, 0.03**2
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        got = ssim_from_stats(sx, sy, sample_covariance=sample_covariance)
        assert torch.equal(got, s.flatten(1).mean(dim=1)), window


def test_l2_lab_matches_reference_package_on_its_examples():
    """The reference's L2 (Lab) runs at batch size 1 on [-1, 1] tensors made by its data loader."""
    import lpips
    from PIL import Image
    from torchvision import transforms

    from tests.conftest import reference_dir

    imgs = reference_dir() / "imgs"
    to_ref = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)]
    )
    to_ours = transforms.ToTensor()
    ref_metric = lpips.L2(use_gpu=False, colorspace="Lab")
    ours = iqa_bench.create_metric("l2-lab")
    pairs = [
        ("ex_ref.png", "ex_p0.png"),
        ("ex_ref.png", "ex_p1.png"),
        ("ex_dir0/0.png", "ex_dir1/0.png"),
        ("ex_dir0/1.png", "ex_dir1/1.png"),
    ]
    for a, b in pairs:
        ia, ib = (Image.open(imgs / n).convert("RGB") for n in (a, b))
        want = float(ref_metric(to_ref(ia)[None], to_ref(ib)[None]))
        got = float(ours(to_ours(ia)[None], to_ours(ib)[None]))
        assert got == pytest.approx(want, rel=1e-6, abs=1e-10), (a, b)


def test_l2_lab_metric_converts_each_image_once_and_scores_as_the_paper_formula():
    from skimage.color import rgb2lab

    x, y = _natural_pairs()
    metric = iqa_bench.create_metric("l2-lab")
    qx, qy = (quantize_uint8_reference(t).double() for t in (x, y))
    embedded = metric.embed(x)  # the runner embeds a 2AFC reference once for both comparisons
    assert embedded.dtype == torch.float64 and embedded.shape == x.shape
    assert torch.equal(embedded, rgb_to_lab(qx))
    got = metric(x, y)
    assert torch.equal(got, l2_lab(qx, qy))
    for k in range(len(x)):
        lab0, lab1 = (rgb2lab(_np(q, k)) / 100.0 for q in (qx, qy))
        assert float(got[k]) == pytest.approx(0.5 * np.mean((lab0 - lab1) ** 2), rel=1e-6)


def test_reference_uint8_round_trip_truncates_like_the_reference_code():
    levels = torch.arange(256, dtype=torch.float32) / 255
    back = quantize_uint8_reference(levels.view(1, 1, 1, -1).expand(1, 3, 1, 256))
    # tensor2im computes ((x/0.5*... + 1) * 127.5).astype(uint8) in float32
    pm1 = (levels.numpy() - np.float32(0.5)) / np.float32(0.5)
    want = ((pm1 + 1) * np.float32(127.5)).astype(np.uint8)
    np.testing.assert_array_equal((back[0, 0, 0] * 255).round().numpy().astype(np.uint8), want)


def test_ssim_matrix_and_convolution_filters_agree():
    """Small images are filtered by banded matrix products, large ones by convolution."""
    from iqa_bench.functional import structural as ssim_module

    g = ssim_module._window_1d("gaussian", 11, 1.5, torch.float64, "cpu")
    x = torch.rand(2, 3, 40, 50, dtype=torch.float64)
    by_matrix = ssim_module._banded_blur(g, 40, 50)(x)
    by_conv = ssim_module._conv_blur(g, 3)(x)
    assert by_matrix.shape == by_conv.shape == (2, 3, 30, 40)
    assert torch.allclose(by_matrix, by_conv, atol=1e-12)

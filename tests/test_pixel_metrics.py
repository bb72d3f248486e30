"""Classical metrics against scikit-image and the reference package's own baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import iqa_bench
from iqa_bench.functional import l2_lab, quantize_uint8_reference, rgb_to_lab


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

"""Structural similarity (SSIM) matching ``skimage.metrics.structural_similarity``.

scikit-image filters the whole image (mode ``reflect``) and then crops ``(win_size - 1) // 2`` pixels
from each border before averaging, so only windows lying fully inside the image count. A "valid"
convolution computes exactly those windows, with no padding convention to match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import InputError


def _window_1d(kind: str, win_size: int, sigma: float, dtype: torch.dtype, device) -> torch.Tensor:
    if kind == "uniform":
        return torch.full((win_size,), 1.0 / win_size, dtype=dtype, device=device)
    radius = win_size // 2
    offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    w = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return w / w.sum()


# Up to this side, filtering as two banded matrix products (BLAS) beats grouped convolution by
# ~20x on CPU in float64; beyond it the O(side) cost per pixel of the products takes over.
_MATMUL_MAX_SIDE = 256


def _banded_blur(g: torch.Tensor, h: int, w: int):
    """Valid separable filtering ``V^T @ t @ H`` with banded matrices built from ``g``."""
    k = g.numel()

    def band(n: int) -> torch.Tensor:
        m = torch.zeros(n, n - k + 1, dtype=g.dtype, device=g.device)
        for j in range(k):
            m.diagonal(-j).copy_(g[j].expand(n - k + 1))
        return m

    bh, bv = band(w), band(h)
    return lambda t: bv.T @ (t @ bh)


def _conv_blur(g: torch.Tensor, channels: int):
    kernel_h = g.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    kernel_v = g.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(t, kernel_h, groups=channels)
        return F.conv2d(t, kernel_v, groups=channels)

    return blur


def gaussian_win_size(sigma: float, truncate: float = 3.5) -> int:
    """Window side scikit-image uses for a Gaussian SSIM window (11 for sigma 1.5)."""
    return 2 * int(truncate * sigma + 0.5) + 1


def ssim_win_size(window: str, win_size: int | None, sigma: float) -> int:
    """The window side SSIM uses: ``win_size`` if given, else 11 for gaussian sigma 1.5, 7 for
    uniform (scikit-image's defaults); also the smallest image side it accepts."""
    if win_size is not None:
        return win_size
    return gaussian_win_size(sigma) if window == "gaussian" else 7


@dataclass(frozen=True)
class SSIMStats:
    """Per-image quantities of SSIM: the image, its local means and local means of its square.

    :func:`ssim_stats` computes them once per image, so a 2AFC reference compared with two
    distortions is filtered once (8 window filterings per triplet instead of 10).
    """

    image: torch.Tensor
    mean: torch.Tensor
    mean_of_square: torch.Tensor
    win_size: int
    blur: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)


def ssim_stats(
    x: torch.Tensor,
    *,
    window: Literal["gaussian", "uniform"] = "gaussian",
    win_size: int | None = None,
    sigma: float = 1.5,
) -> SSIMStats:
    """The per-image half of :func:`ssim` (arguments as there); see :func:`ssim_from_stats`.

    Example:
        >>> x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
        >>> torch.equal(ssim_from_stats(ssim_stats(x), ssim_stats(y)), ssim(x, y))
        True
    """
    win_size = ssim_win_size(window, win_size, sigma)
    if win_size % 2 == 0 or win_size < 3:
        raise InputError(f"win_size: must be odd and >= 3, got {win_size}.")
    h, w = x.shape[-2:]
    if min(h, w) < win_size:
        raise InputError(
            f"images of {h}x{w} are smaller than the SSIM window {win_size}x{win_size}; "
            "use larger images or a smaller win_size."
        )
    g = _window_1d(window, win_size, sigma, x.dtype, x.device)
    blur = _banded_blur(g, h, w) if max(h, w) <= _MATMUL_MAX_SIDE else _conv_blur(g, x.shape[1])
    return SSIMStats(x, blur(x), blur(x * x), win_size, blur)


def ssim_from_stats(
    sx: SSIMStats,
    sy: SSIMStats,
    *,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
    sample_covariance: bool = False,
) -> torch.Tensor:
    """Mean SSIM per image from two images' :func:`ssim_stats` (same window, same image size).

    Raises:
        ValueError: The two were computed with different windows or image sizes.
    """
    if sx.win_size != sy.win_size or sx.image.shape != sy.image.shape:
        raise InputError(
            f"SSIM statistics differ in window ({sx.win_size} vs {sy.win_size}) or image shape "
            f"({tuple(sx.image.shape)} vs {tuple(sy.image.shape)}); compute both with the same "
            "settings on equally sized batches."
        )
    ux, uy = sx.mean, sy.mean
    # Each term is a pass over float64 maps: the squares are computed once (x**2 is x*x in torch,
    # and 2*x*y == 2*(x*y) exactly) and the covariance factor is applied only where it is not 1.
    uxx, uyy, uxy = ux * ux, uy * uy, ux * uy
    vx = sx.mean_of_square - uxx
    vy = sy.mean_of_square - uyy
    vxy = sx.blur(sx.image * sy.image) - uxy
    if sample_covariance:
        n = sx.win_size**2
        vx, vy, vxy = (n / (n - 1) * v for v in (vx, vy, vxy))
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * uxy + c1) * (2 * vxy + c2)) / ((uxx + uyy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    window: Literal["gaussian", "uniform"] = "gaussian",
    win_size: int | None = None,
    sigma: float = 1.5,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
    sample_covariance: bool = False,
) -> torch.Tensor:
    """Mean SSIM per image (channels averaged), as scikit-image with ``channel_axis``.

    Args:
        x, y: (N, C, H, W) images.
        window: ``gaussian`` (weights by ``sigma``) or ``uniform``.
        win_size: Window side; default 11 for gaussian with sigma 1.5, 7 for uniform.
        sigma: Gaussian standard deviation.
        data_range: Dynamic range of the values (1 for [0, 1]).
        k1, k2: Stability constants.
        sample_covariance: Normalise variances by ``n - 1`` (scikit-image's default for uniform).

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> ssim(x, x)
        tensor([1.])
    """
    window_args = {"window": window, "win_size": win_size, "sigma": sigma}
    return ssim_from_stats(
        ssim_stats(x, **window_args),
        ssim_stats(y, **window_args),
        data_range=data_range,
        k1=k1,
        k2=k2,
        sample_covariance=sample_covariance,
    )


__all__ = [
    "SSIMStats",
    "gaussian_win_size",
    "ssim",
    "ssim_from_stats",
    "ssim_stats",
    "ssim_win_size",
]

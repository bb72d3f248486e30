"""Pixel-space distances: MSE, PSNR and the LPIPS paper's Lab L2."""

from __future__ import annotations

import torch

from .color import rgb_to_lab


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image over channels and pixels.

    Example:
        >>> mse(torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4))
        tensor([1., 1.])
    """
    return ((x - y) ** 2).flatten(1).mean(dim=1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (``inf`` for identical images), as scikit-image.

    Example:
        >>> psnr(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.1)).round()
        tensor([20.])
    """
    err = mse(x, y)
    identical = err == 0
    # The safe denominator keeps the gradient at x == y at 0 instead of NaN (inf * 0).
    safe = torch.where(identical, torch.ones_like(err), err)
    return torch.where(
        identical, torch.full_like(err, float("inf")), 10.0 * torch.log10(data_range**2 / safe)
    )


def l2_lab(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The LPIPS paper's L2 baseline: ``0.5 * mean((Lab(x)/100 - Lab(y)/100)^2)`` per image.

    Example:
        >>> float(l2_lab(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)))  # L* 0 vs 100
        0.1666...
    """
    return l2_lab_from_lab(rgb_to_lab(x), rgb_to_lab(y))


def l2_lab_from_lab(lab_x: torch.Tensor, lab_y: torch.Tensor) -> torch.Tensor:
    """:func:`l2_lab` of images already converted by :func:`rgb_to_lab` (a 2AFC reference is then
    converted once for both comparisons; the conversion costs far more than the difference).

    Example:
        >>> x, y = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
        >>> torch.equal(l2_lab_from_lab(rgb_to_lab(x), rgb_to_lab(y)), l2_lab(x, y))
        True
    """
    return 0.5 * ((lab_x / 100.0 - lab_y / 100.0) ** 2).flatten(1).mean(dim=1)

"""Colour conversions matching scikit-image, and the reference code's uint8 round trip."""

from __future__ import annotations

import torch

# sRGB (D65) -> XYZ, and the D65 2-degree white point, as in skimage.color.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.95047, 1.0, 1.08883)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """CIE L*a*b* of sRGB images in [0, 1], as ``skimage.color.rgb2lab`` computes it.

    Args:
        x: (N, 3, H, W) RGB in [0, 1].

    Returns:
        (N, 3, H, W) with L in [0, 100], in the dtype of ``x``.

    Example:
        >>> rgb_to_lab(torch.ones(1, 3, 1, 1))[0, :, 0, 0].round()
        tensor([100.,  -0.,   0.])
    """
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=x.dtype, device=x.device)
    xyz = torch.einsum("ij,njhw->nihw", matrix, linear)
    xyz = xyz / torch.tensor(_WHITE_D65, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def quantize_uint8_reference(x: torch.Tensor) -> torch.Tensor:
    """Round-trip [0, 1] images to uint8 levels the way the LPIPS reference code does.

    The reference loads images to [-1, 1] in float32 (``Normalize(0.5, 0.5)``) and its ``tensor2im``
    turns them back with ``((x + 1) * 127.5).astype(uint8)``, which truncates: a pixel of 255 can come
    back as 254. The paper's L2-Lab and SSIM baselines were computed on those values, so this
    reproduces the float32 arithmetic exactly.

    Returns:
        Values in [0, 1] on the uint8 grid (k / 255), in the dtype of ``x``.
    """
    x32 = x.to(torch.float32)
    pm1 = (x32 - 0.5) / 0.5
    levels = torch.floor((pm1 + 1.0) * 127.5).clamp(0, 255)
    return (levels / 255.0).to(x.dtype) if x.dtype != torch.float32 else levels / 255.0

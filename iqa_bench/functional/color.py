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
# sRGB linearisation of the 256 reference-uint8 levels, per (dtype, device).
_LINEAR_TABLES: dict[tuple[torch.dtype, str], torch.Tensor] = {}


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)


def _linear_rgb_to_lab(linear: torch.Tensor) -> torch.Tensor:
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=linear.dtype, device=linear.device)
    white = torch.tensor(_WHITE_D65, dtype=linear.dtype, device=linear.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,njhw->nihw", matrix, linear)
    if linear.requires_grad and torch.is_grad_enabled():
        xyz = xyz / white
        f = torch.where(xyz > 0.008856, xyz.clamp_min(0) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
        fx, fy, fz = f.unbind(1)
        return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)
    # Without autograd the same operations, in the same order per element, run in place: this
    # conversion is most of l2-lab's cost on CPU and each temporary is a pass over float64 data.
    xyz /= white
    cubic = xyz > 0.008856
    root = xyz.clamp_min(0).pow_(1.0 / 3.0)
    f = torch.where(cubic, root, xyz.mul_(7.787).add_(16.0 / 116.0), out=xyz)
    fx, fy, fz = f.unbind(1)
    lab = torch.empty(f.shape, dtype=f.dtype, device=f.device)  # contiguous, as torch.stack gives
    torch.mul(fy, 116.0, out=lab[:, 0]).sub_(16.0)
    torch.sub(fx, fy, out=lab[:, 1]).mul_(500.0)
    torch.sub(fy, fz, out=lab[:, 2]).mul_(200.0)
    return lab


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
    return _linear_rgb_to_lab(_srgb_to_linear(x))


def lab_of_reference_uint8(x: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Lab of the reference code's uint8 round trip of ``x``: bit for bit
    ``rgb_to_lab(quantize_uint8_reference(x).to(dtype))``, with the sRGB linearisation (a power
    per value) read from a 256-entry table made by that same formula.

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> torch.equal(lab_of_reference_uint8(x), rgb_to_lab(quantize_uint8_reference(x).double()))
        True
    """
    levels = _reference_uint8_levels(x).to(torch.long)
    # take() returns a contiguous tensor; read the levels in their memory order instead, so the
    # linear image has the layout the plain formula gives it (the 3x3 colour product's summation,
    # and with it the last bit, depends on the layout).
    memory_order = sorted(range(levels.dim()), key=lambda d: -levels.stride(d))
    linear = torch.take(_linear_table(dtype, x.device), levels.permute(memory_order))
    return _linear_rgb_to_lab(linear.permute([memory_order.index(d) for d in range(levels.dim())]))


def _linear_table(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    key = (dtype, str(device))
    if key not in _LINEAR_TABLES:
        # The values quantize_uint8_reference yields (level / 255 in float32), then its cast.
        grid = (torch.arange(256, dtype=torch.float32, device=device) / 255.0).to(dtype)
        _LINEAR_TABLES[key] = _srgb_to_linear(grid)
    return _LINEAR_TABLES[key]


def _reference_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    """The uint8 levels (0..255, as float32) the reference code's round trip gives ``x``; see
    :func:`quantize_uint8_reference`."""
    pm1 = (x.to(torch.float32) - 0.5) / 0.5
    return torch.floor((pm1 + 1.0) * 127.5).clamp(0, 255)


def quantize_uint8_reference(x: torch.Tensor) -> torch.Tensor:
    """Round-trip [0, 1] images to uint8 levels the way the LPIPS reference code does.

    The reference loads images to [-1, 1] in float32 (``Normalize(0.5, 0.5)``) and its ``tensor2im``
    turns them back with ``((x + 1) * 127.5).astype(uint8)``, which truncates: a pixel of 255 can come
    back as 254. The paper's L2-Lab and SSIM baselines were computed on those values, so this
    reproduces the float32 arithmetic exactly.

    Returns:
        Values in [0, 1] on the uint8 grid (k / 255), in the dtype of ``x``.
    """
    levels = _reference_uint8_levels(x)
    return (levels / 255.0).to(x.dtype) if x.dtype != torch.float32 else levels / 255.0

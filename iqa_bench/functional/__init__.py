"""Pure metric math on tensors (no registry, no weights loading): the functional half of each metric."""

from .color import quantize_uint8_reference, rgb_to_lab
from .lpips import lpips_distance, lpips_distance_map, normalize_features
from .pixel import l2_lab, mse, psnr
from .structural import ssim

__all__ = [
    "l2_lab",
    "lpips_distance",
    "lpips_distance_map",
    "mse",
    "normalize_features",
    "psnr",
    "quantize_uint8_reference",
    "rgb_to_lab",
    "ssim",
]

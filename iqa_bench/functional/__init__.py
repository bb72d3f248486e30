"""Pure metric math on tensors (no registry, no weights loading): the functional half of each metric."""

from .color import lab_of_reference_uint8, quantize_uint8_reference, rgb_to_lab
from .dists import dists_distance
from .lpips import (
    lpips_distance,
    lpips_distance_map,
    lpips_layer_distances,
    normalize_features,
    semantic_weight,
)
from .pixel import l2_lab, l2_lab_from_lab, mse, psnr
from .structural import SSIMStats, ssim, ssim_from_stats, ssim_stats

__all__ = [
    "SSIMStats",
    "dists_distance",
    "l2_lab",
    "l2_lab_from_lab",
    "lab_of_reference_uint8",
    "lpips_distance",
    "lpips_distance_map",
    "lpips_layer_distances",
    "mse",
    "normalize_features",
    "psnr",
    "quantize_uint8_reference",
    "rgb_to_lab",
    "semantic_weight",
    "ssim",
    "ssim_from_stats",
    "ssim_stats",
]

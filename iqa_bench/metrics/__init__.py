"""Metric types (registered classes) and the factory that builds named metrics from cards."""

from ..catalog import MetricInfo, list_metrics
from . import bridges  # noqa: F401  (registers the piq, torchmetrics and pyiqa metric types)
from .base import METRIC_TYPES, Metric, check_images, check_pair
from .dists import DISTS, DISTSConfig
from .factory import create_metric
from .lpips import LPIPS, LPIPSConfig
from .perceptual import Perceptual, PerceptualConfig
from .pixel import L2, PSNR, SSIM
from .trunk import TrunkMetric

__all__ = [
    "DISTS",
    "DISTSConfig",
    "L2",
    "LPIPS",
    "LPIPSConfig",
    "METRIC_TYPES",
    "Metric",
    "MetricInfo",
    "PSNR",
    "Perceptual",
    "PerceptualConfig",
    "SSIM",
    "TrunkMetric",
    "check_images",
    "check_pair",
    "create_metric",
    "list_metrics",
]

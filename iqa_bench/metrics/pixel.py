"""Classical metrics: L2 (RGB or the paper's Lab), PSNR and SSIM, computed in float64."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..functional import (
    SSIMStats,
    l2_lab_from_lab,
    lab_of_reference_uint8,
    mse,
    psnr,
    quantize_uint8_reference,
    rgb_to_lab,
    ssim_from_stats,
    ssim_stats,
)
from ..functional.structural import ssim_win_size
from .base import METRIC_TYPES, Metric, autocast_off

Quantize = Literal["none", "reference-uint8"]


def _compute_dtype(device: torch.device) -> torch.dtype:
    # float64 keeps agreement with scikit-image at 1e-5 and costs little for pixel metrics.
    return torch.float64 if device.type in ("cpu", "cuda") else torch.float32


def _prepare(x: torch.Tensor, quantize: str) -> torch.Tensor:
    if quantize == "reference-uint8":
        x = quantize_uint8_reference(x)
    return x.to(_compute_dtype(x.device))


class PixelMetric(Metric):
    """Shared plumbing: optional reference uint8 round trip, float64, autocast off."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return _prepare(x, self.config.quantize)

    @property
    def embedding_key(self) -> tuple:
        # The prepared image: shared by l2 and psnr, and computed once for a 2AFC reference.
        return ("pixel-prepared", self.config.quantize)

    @property
    def is_differentiable(self) -> bool:  # type: ignore[override]
        return self.config.quantize == "none"


@dataclass(frozen=True)
class L2Config:
    """Parameters of ``l2`` metrics.

    Attributes:
        colorspace: ``rgb`` (mean squared error of [0, 1] values) or ``lab`` (the LPIPS paper's
            ``0.5 * mean((Lab0/100 - Lab1/100)^2)``).
        quantize: ``reference-uint8`` reproduces the reference code's truncating uint8 round trip.
    """

    colorspace: Literal["rgb", "lab"] = "rgb"
    quantize: Quantize = "none"


@METRIC_TYPES.register("l2")
class L2(PixelMetric):
    """L2 distance in RGB or Lab. Example: ``create_metric("l2")(x, y)``."""

    Config = L2Config
    higher_is_better = False

    @property
    def embedding_key(self) -> tuple:
        if self.config.colorspace == "lab":
            return ("pixel-lab", self.config.quantize)
        return super().embedding_key

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The prepared image, in Lab for ``colorspace: lab`` (converted once per image)."""
        if self.config.colorspace != "lab":
            return super().embed(x)
        with autocast_off(x.device.type):
            if self.config.quantize == "reference-uint8":
                return lab_of_reference_uint8(x, _compute_dtype(x.device))
            return rgb_to_lab(super().embed(x))

    def compare(self, ex: torch.Tensor, ey: torch.Tensor) -> torch.Tensor:
        with autocast_off(ex.device.type):
            return l2_lab_from_lab(ex, ey) if self.config.colorspace == "lab" else mse(ex, ey)


@dataclass(frozen=True)
class PSNRConfig:
    """Parameters of ``psnr``.

    Attributes:
        data_range: Peak value (1 for [0, 1] inputs).
        quantize: See :class:`L2Config`.
    """

    data_range: float = 1.0
    quantize: Quantize = "none"


@METRIC_TYPES.register("psnr")
class PSNR(PixelMetric):
    """Peak signal-to-noise ratio in dB (a similarity: higher is better; ``inf`` when equal)."""

    Config = PSNRConfig
    higher_is_better = True

    def compare(self, ex: torch.Tensor, ey: torch.Tensor) -> torch.Tensor:
        with autocast_off(ex.device.type):
            return psnr(ex, ey, self.config.data_range)


@dataclass(frozen=True)
class SSIMConfig:
    """Parameters of ``ssim`` metrics (scikit-image's ``structural_similarity`` conventions).

    Attributes:
        window: ``gaussian`` (the common convention) or ``uniform`` (scikit-image's default).
        win_size: Window side; None = 11 for gaussian sigma 1.5, 7 for uniform.
        sigma: Gaussian standard deviation.
        sample_covariance: Normalise variances by n - 1 (scikit-image's default).
        data_range: Dynamic range of the inputs.
        k1: Luminance stability constant.
        k2: Contrast stability constant.
        quantize: See :class:`L2Config`.
    """

    window: Literal["gaussian", "uniform"] = "gaussian"
    win_size: int | None = None
    sigma: float = 1.5
    sample_covariance: bool = False
    data_range: float = 1.0
    k1: float = 0.01
    k2: float = 0.03
    quantize: Quantize = "none"


@METRIC_TYPES.register("ssim")
class SSIM(PixelMetric):
    """Mean structural similarity over channels (a similarity: higher is better)."""

    Config = SSIMConfig
    higher_is_better = True

    @property
    def min_size(self) -> int:
        c = self.config
        return ssim_win_size(c.window, c.win_size, c.sigma)

    @property
    def embedding_key(self) -> tuple:
        c = self.config
        return ("ssim-stats", c.quantize, c.window, c.win_size, c.sigma)

    def embed(self, x: torch.Tensor) -> SSIMStats:
        """The image's SSIM statistics (local means of it and its square), once per image."""
        c = self.config
        x = super().embed(x)
        with autocast_off(x.device.type):
            return ssim_stats(x, window=c.window, win_size=c.win_size, sigma=c.sigma)

    def compare(self, ex: SSIMStats, ey: SSIMStats) -> torch.Tensor:
        c = self.config
        with autocast_off(ex.image.device.type):
            return ssim_from_stats(
                ex,
                ey,
                data_range=c.data_range,
                k1=c.k1,
                k2=c.k2,
                sample_covariance=c.sample_covariance,
            )

"""Feature-reconstruction ("perceptual") loss of Johnson et al. (2016): VGG16 relu4_3 by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..config import MetricCard
from .base import METRIC_TYPES, autocast_off
from .trunk import (
    TrunkMetric,
    build_trunk,
    register_normalisation,
    spec_normalisation,
    trunk_key,
    trunk_min_size,
)


@dataclass(frozen=True)
class PerceptualConfig:
    """Parameters of ``perceptual`` metrics.

    Attributes:
        backbone: Registered trunk name.
        layer: Module whose output is compared (``features.22`` = VGG16 relu4_3).
        distance: ``l1`` (mean absolute difference) or ``l2`` (mean squared difference).
        pretrained: Load the trunk's ImageNet weights (False = random trunk, for tests).
    """

    backbone: str = "vgg16"
    layer: str = "features.22"
    distance: Literal["l1", "l2"] = "l1"
    pretrained: bool = True


@METRIC_TYPES.register("perceptual")
class Perceptual(TrunkMetric):
    """Mean L1 (or L2) difference of ImageNet-normalised trunk features at one layer."""

    Config = PerceptualConfig
    higher_is_better = False
    is_differentiable = True

    def __init__(self, config: PerceptualConfig, card: MetricCard) -> None:
        super().__init__(config, card)
        spec, self.trunk, hashes = build_trunk(config.backbone, (config.layer,), config.pretrained)
        self.weight_hashes.update(hashes)
        kind, self._norm_key = spec_normalisation(spec, "imagenet")
        register_normalisation(self, kind, spec.mean, spec.std)
        self._init_features_key()

    @property
    def min_size(self) -> int:
        return trunk_min_size(self.config.backbone, (self.config.layer,))

    @property
    def embedding_key(self) -> tuple:
        return trunk_key(self, "raw", self.trunk.taps, self._norm_key)

    def embed_features(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return features[self.config.layer]

    def compare(self, ex: torch.Tensor, ey: torch.Tensor) -> torch.Tensor:
        with autocast_off(ex.device.type):
            diff = ex.float() - ey.float()
            per = diff.abs() if self.config.distance == "l1" else diff * diff
            return per.flatten(1).mean(dim=1)

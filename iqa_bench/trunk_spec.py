"""What a feature trunk is: its builder, tap points and where its ImageNet weights come from.

The leaf of the backbone layer: :mod:`iqa_bench.weights` (weights lookup), :mod:`iqa_bench.zoo`
(``torchvision:``/``timm:`` resolvers) and :mod:`iqa_bench.backbones` (the registry) import these
types, and this module imports none of them.

Example:
    >>> TrunkWeights(stem="alexnet-owt-7be5be79", url="").features_file
    'alexnet-owt-7be5be79-features.pth'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TrunkWeights:
    """Where a trunk's ImageNet weights come from.

    Attributes:
        stem: torchvision checkpoint stem, e.g. ``alexnet-owt-7be5be79``; its last part is the prefix
            of the full checkpoint's SHA-256 (torch hub convention).
        url: Download address of the full torchvision checkpoint.
        features_sha256: SHA-256 of the features-only file, when known (else recorded on first use).
        keep_prefix: Only state-dict keys starting with this are kept in the features-only file.
    """

    stem: str
    url: str
    features_sha256: str | None = None
    keep_prefix: str = "features."

    @property
    def features_file(self) -> str:
        """File name of the kept weights: ``<stem>-features.pth`` (as in ``../shared/weights``), or
        torchvision's own ``<stem>.pth`` when the whole checkpoint is kept (``keep_prefix=""``)."""
        return f"{self.stem}-features.pth" if self.keep_prefix else f"{self.stem}.pth"

    @property
    def checkpoint_sha256_prefix(self) -> str:
        """Hex SHA-256 prefix promised by the checkpoint name ("" when the name promises none)."""
        suffix = self.stem.rsplit("-", 1)[-1]
        return suffix if re.fullmatch(r"[0-9a-f]{6,64}", suffix) else ""


@dataclass(frozen=True)
class BackboneSpec:
    """A trunk that LPIPS-style metrics can tap.

    Attributes:
        name: Registry name (``alex``, ``vgg16``, ``squeezenet1_1``, ``torchvision:resnet18``).
        build: Returns the network with random weights (no download).
        taps: Module names whose outputs are the features, in forward order; empty when the
            backbone declares none (zoo backbones), so a metric must give them.
        weights: ImageNet weights source, or None for trunks used untrained.
        lpips_name: Name of the trunk in the reference ``lpips`` package (for its linear weights).
        mean, std: Input normalisation of [0, 1] RGB that the weights expect; None = ImageNet's
            (for LPIPS v0.1 the reference ScalingLayer, which is the same mapping).
        pretrained_state: For weights that do not come from a checkpoint URL (timm): returns
            ``(state_dict, sha256)``; raises ``WeightsUnavailableError`` when unobtainable.
    """

    name: str
    build: Callable[[], nn.Module]
    taps: tuple[str, ...]
    weights: TrunkWeights | None = None
    lpips_name: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    pretrained_state: Callable[[], tuple[dict[str, torch.Tensor], str]] | None = None

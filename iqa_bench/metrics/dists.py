"""DISTS (Ding et al., TPAMI 2020) on the L2-pooled VGG16 backbone, with the published weights.

The structure/texture weights ``alpha``/``beta`` are the reference ``DISTS_pytorch`` package's
``weights.pt``, found in its installed files (the package is not imported: it imports
torchvision) and checked against the SHA-256 of the published file, so a different file can never
give numbers under this card's version. The trunk is ``vgg16-l2pool``: VGG16's convolutions and
weights file with L2 pooling (see :class:`iqa_bench.trunks.L2Pool2d`).

Trunk sharing: DISTS metrics on the same backbone, weights and input map share one trunk pass
(their own ``features_key``, since their features include the raw image). Nothing is shared with
the max-pooled ``vgg16`` metrics (``lpips-vgg``, ``vgg16-conv4_3``): only relu1_2, before the first
pooling, is the same there.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import MetricCard
from ..errors import InputError, WeightsUnavailableError
from ..functional import dists_distance
from ..weights import sha256_file
from .base import METRIC_TYPES, autocast_off
from .trunk import (
    TrunkMetric,
    build_trunk,
    register_normalisation,
    spec_normalisation,
    trunk_key,
    trunk_min_size,
)

#: SHA-256 of ``weights.pt`` in ``DISTS_pytorch`` 0.1 (alpha, beta: (1, 1475, 1, 1) float32).
DISTS_WEIGHTS_SHA256 = "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"

#: Name of the raw-image entry DISTS adds to its trunk features (its first feature set).
INPUT_FEATURES = "input"

#: Channels of the six feature sets the published weights are for: the image, relu1_2 ... relu5_3.
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)


def dists_weights_path() -> Path:
    """Path of the published alpha/beta weights in the installed ``DISTS_pytorch`` package.

    Raises:
        WeightsUnavailableError: The package is not installed or lacks its ``weights.pt``.
    """
    spec = importlib.util.find_spec("DISTS_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            "the DISTS alpha/beta weights come from the 'DISTS_pytorch' package, which is not "
            "installed (a dependency of iqa-bench: reinstall it). Fix: pip install DISTS_pytorch==0.1"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights.pt"
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{path}: the installed DISTS_pytorch package has no weights.pt. "
            "Fix: pip install --force-reinstall DISTS_pytorch==0.1"
        )
    return path


def load_dists_weights(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha, beta)`` as flat float32 vectors from the published weights file.

    Raises:
        InputError: The file is not the published one (SHA-256), naming both hashes and the fix.
    """
    digest = sha256_file(path)
    if digest != DISTS_WEIGHTS_SHA256:
        raise InputError(
            f"{path}: SHA-256 {digest} is not that of the published DISTS weights "
            f"({DISTS_WEIGHTS_SHA256}); the file is corrupt or another release's. "
            "Fix: pip install --force-reinstall DISTS_pytorch==0.1"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state["alpha"].reshape(-1).float(), state["beta"].reshape(-1).float()


def _check_channels(backbone: str, channels: list[int]) -> None:
    """The trunk's taps must give the channels the published weights are for.

    Raises:
        InputError: Naming the backbone, both channel lists and the fix.
    """
    if tuple(channels) != DISTS_CHANNELS[1:]:
        raise InputError(
            f"backbone {backbone!r}: its taps give {list(channels)} channels but the DISTS "
            f"weights are for {list(DISTS_CHANNELS[1:])}; use backbone vgg16-l2pool."
        )


@dataclass(frozen=True)
class DISTSConfig:
    """Parameters of ``dists`` metrics.

    Attributes:
        backbone: Registered trunk name; its declared taps must give DISTS's 64, 128, 256, 512
            and 512 channels (``vgg16-l2pool``).
        pretrained: Load the trunk's ImageNet weights (False = random trunk, for tests).
    """

    backbone: str = "vgg16-l2pool"
    pretrained: bool = True


@METRIC_TYPES.register("dists")
class DISTS(TrunkMetric):
    """Deep Image Structure and Texture Similarity, as a distance (0 for identical images).

    Example (skipped: needs the VGG16 weights file):
        >>> metric = create_metric("dists")  # doctest: +SKIP
        >>> metric(x, y).shape  # doctest: +SKIP
        torch.Size([4])
    """

    Config = DISTSConfig
    higher_is_better = False
    is_differentiable = True

    def __init__(self, config: DISTSConfig, card: MetricCard) -> None:
        super().__init__(config, card)
        path = dists_weights_path()  # before the trunk: a missing package fails fast
        spec, self.trunk, hashes = build_trunk(config.backbone, None, config.pretrained)
        # The default trunk's channels are fixed (a test checks them); a dry run costs seconds
        # of imports on the meta device.
        if config.backbone != DISTSConfig.backbone:
            _check_channels(config.backbone, self.trunk.channels())
        self.weight_hashes.update(hashes)
        alpha, beta = load_dists_weights(path)
        self.register_buffer("alpha", alpha)
        self.register_buffer("beta", beta)
        self.weight_hashes["alpha_beta"] = sha256_file(path)
        kind, self._norm_key = spec_normalisation(spec, "imagenet")
        register_normalisation(self, kind, spec.mean, spec.std)
        self._init_features_key()

    def _init_features_key(self) -> None:
        # Only DISTS metrics provide the raw image among their features.
        super()._init_features_key()
        self._features_key = ("dists", *self._features_key)

    @property
    def min_size(self) -> int:
        return trunk_min_size(self.config.backbone, None)

    @property
    def embedding_key(self) -> tuple:
        return trunk_key(self, "dists", self.trunk.taps, self._norm_key)

    def features(self, x: torch.Tensor, *more: torch.Tensor) -> dict[str, torch.Tensor]:
        """The tapped trunk outputs plus the raw [0, 1] image (DISTS's first feature set)."""
        out = super().features(x, *more)
        out[INPUT_FEATURES] = torch.cat([x, *more]) if more else x
        return out

    def embed_features(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [features[INPUT_FEATURES], *(features[t] for t in self.trunk.taps)]

    def compare(self, ex: list[torch.Tensor], ey: list[torch.Tensor]) -> torch.Tensor:
        with autocast_off(ex[0].device.type):
            fx, fy = [f.float() for f in ex], [f.float() for f in ey]
            return dists_distance(fx, fy, self.alpha, self.beta)

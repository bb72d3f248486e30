"""Building a frozen, weight-loaded trunk from a backbone spec (shared by LPIPS and perceptual losses)."""

from __future__ import annotations

import torch

from ..backbones import BACKBONES, BackboneSpec, TappedTrunk, min_input_size
from ..weights import load_trunk_state

# Input normalisations, applied to [0, 1] images.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def build_trunk(
    backbone: str, taps: tuple[str, ...] | None, pretrained: bool
) -> tuple[BackboneSpec, TappedTrunk, dict[str, str]]:
    """A frozen, eval-mode trunk; with ``pretrained`` its ImageNet weights are loaded.

    Returns:
        The spec, the trunk and ``{"trunk": sha256}`` of the weights file (empty when random).

    Raises:
        WeightsUnavailableError: Pretrained weights requested but not obtainable.
    """
    spec = BACKBONES.get(backbone)
    trunk = TappedTrunk(spec.build(), taps or spec.taps)
    hashes: dict[str, str] = {}
    if pretrained:
        if spec.weights is None:
            raise ValueError(
                f"backbone {backbone!r} has no pretrained weights; set pretrained: false."
            )
        state, digest = load_trunk_state(spec.weights)
        trunk.load_trunk_state_dict(state)
        hashes["trunk"] = digest
    trunk.eval()
    trunk.requires_grad_(False)
    return spec, trunk, hashes


def trunk_min_size(backbone: str, taps: tuple[str, ...] | None) -> int:
    return min_input_size(backbone, tuple(taps) if taps else None)


def register_normalisation(module: torch.nn.Module, kind: str) -> None:
    """Attach ``shift``/``scale`` buffers mapping [0, 1] input to what the trunk expects.

    ``lpips-v0.1``: [-1, 1] then the reference ScalingLayer; ``lpips-v0.0``: [-1, 1] only (the
    original release's unscaled input); ``imagenet``: torchvision's mean/std.
    """
    if kind == "imagenet":
        shift, scale, pm1 = _IMAGENET_MEAN, _IMAGENET_STD, False
    elif kind == "lpips-v0.1":
        shift, scale, pm1 = _LPIPS_SHIFT, _LPIPS_SCALE, True
    elif kind == "lpips-v0.0":
        shift, scale, pm1 = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), True
    else:
        raise ValueError(f"input normalisation {kind!r}: use imagenet, lpips-v0.1 or lpips-v0.0.")
    module.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
    module.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
    module.to_pm1 = pm1


def normalise_input(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    if module.to_pm1:
        x = 2 * x - 1
    x = (x - module.shift) / module.scale
    return x.contiguous(memory_format=torch.channels_last) if module.channels_last else x


def trunk_key(module: torch.nn.Module, kind: str, taps: tuple[str, ...], norm: str) -> tuple:
    """Identity of a trunk computation: same backbone, taps, input and weights give equal features.

    A random trunk (no weights file) is identified by the object itself, so it is never shared.
    """
    weights = module.weight_hashes.get("trunk") or f"random:{id(module.trunk)}"
    return (kind, module.config.backbone, tuple(taps), norm, weights)

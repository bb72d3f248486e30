"""Building a frozen, weight-loaded trunk from a backbone spec (shared by LPIPS and perceptual losses)."""

from __future__ import annotations

import torch

from ..backbones import BACKBONES, BackboneSpec, TappedTrunk, candidate_taps, min_input_size
from ..errors import InputError
from ..weights import load_trunk_state
from .base import Metric, check_pair

#: ``TrunkMetric.forward`` runs ``x`` and ``y`` through the trunk together up to this many pixels
#: (batch x height x width, both batches), the runner's default ``--max-batch-pixels``.
JOINT_PASS_MAX_PIXELS = 64 * 256 * 256

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
    if not taps and not spec.taps:
        with torch.device("meta"):
            candidates = candidate_taps(spec.build())
        raise InputError(
            f"taps: backbone {backbone!r} declares no taps, so the metric must name them (a list "
            f"of module names in forward order); candidates: {', '.join(candidates)} "
            f"(`iqa-bench backbones {backbone}` shows their output shapes)."
        )
    trunk = _meta_sequential_trunk(spec, taps) if pretrained else None
    on_meta = trunk is not None
    if trunk is None:
        trunk = TappedTrunk(spec.build(), taps or spec.taps)
    hashes: dict[str, str] = {}
    if pretrained:
        if spec.weights is not None:
            state, digest = load_trunk_state(spec.weights)
        elif spec.pretrained_state is not None:
            state, digest = spec.pretrained_state()
        else:
            raise InputError(
                f"backbone {backbone!r} has no pretrained weights; set pretrained: false."
            )
        trunk.load_trunk_state_dict(state, assign=on_meta)
        hashes["trunk"] = digest
    trunk.eval()
    trunk.requires_grad_(False)
    return spec, trunk, hashes


def _meta_sequential_trunk(spec, taps) -> TappedTrunk | None:
    """A sequential trunk built on the meta device, to be given the weights file's tensors.

    Initialising a whole classifier (100M+ parameters for VGG16) only to drop it costs seconds, and
    allocating empty storage for meta tensors (``to_empty``) imports sympy; for pretrained sequential
    trunks every kept tensor comes from the weights file instead.
    None where that is not safe (non-sequential trunks, buffers not stored in a state dict).
    """
    with torch.device("meta"):
        trunk = TappedTrunk(spec.build(), taps or spec.taps)
    if trunk.layers is None or any(m._non_persistent_buffers_set for m in trunk.modules()):
        return None
    return trunk


def trunk_min_size(backbone: str, taps: tuple[str, ...] | None) -> int:
    return min_input_size(backbone, tuple(taps) if taps else None)


def register_normalisation(
    module: torch.nn.Module,
    kind: str,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> None:
    """Attach ``shift``/``scale`` buffers mapping [0, 1] input to what the trunk expects.

    ``lpips-v0.1``: [-1, 1] then the reference ScalingLayer; ``lpips-v0.0``: [-1, 1] only (the
    original release's unscaled input); ``imagenet``: torchvision's mean/std; ``custom``: the given
    ``mean``/``std`` (a backbone's own, e.g. from its weights' transforms).
    """
    if kind == "imagenet":
        shift, scale, pm1 = _IMAGENET_MEAN, _IMAGENET_STD, False
    elif kind == "custom" and mean is not None and std is not None:
        shift, scale, pm1 = tuple(mean), tuple(std), False
    elif kind == "lpips-v0.1":
        shift, scale, pm1 = _LPIPS_SHIFT, _LPIPS_SCALE, True
    elif kind == "lpips-v0.0":
        shift, scale, pm1 = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), True
    else:
        raise InputError(
            f"input normalisation {kind!r}: use imagenet, lpips-v0.1, lpips-v0.0 or custom "
            "(custom needs mean and std)."
        )
    module.register_buffer("shift", torch.tensor(shift).view(1, 3, 1, 1), persistent=False)
    module.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
    module.to_pm1 = pm1


def spec_normalisation(spec: BackboneSpec, default: str) -> tuple[str, str]:
    """``(kind, key)`` of a trunk's input normalisation: the backbone's own mean/std when it declares
    them (zoo backbones: from their weights' transforms), else ``default``; ``key`` identifies it in
    embedding keys."""
    if spec.mean is None or spec.std is None or default == "lpips-v0.0":
        return default, default
    return "custom", f"mean={tuple(spec.mean)},std={tuple(spec.std)}"


def normalise_input(module: torch.nn.Module, *batches: torch.Tensor) -> torch.Tensor:
    """The trunk input for [0, 1] batches of equal image size, concatenated along the batch.

    One fused multiply-add per batch, ``x * gain + offset`` (the module's affine map, equal to the
    reference's ``((2x - 1) - shift) / scale`` up to float32 rounding), written straight into the
    concatenated tensor in the trunk's layout: no intermediate image-sized tensors.
    """
    gain = (2.0 if module.to_pm1 else 1.0) / module.scale
    offset = ((-1.0 if module.to_pm1 else 0.0) - module.shift) / module.scale
    layout = torch.channels_last if module.channels_last else torch.contiguous_format
    if torch.is_grad_enabled() and any(b.requires_grad for b in batches):  # out= has no autograd
        return torch.cat([b * gain + offset for b in batches]).contiguous(memory_format=layout)
    first = batches[0]
    dtype = torch.promote_types(first.dtype, gain.dtype)
    out = torch.empty(
        (sum(b.shape[0] for b in batches), *first.shape[1:]),
        dtype=dtype,
        device=first.device,
        memory_format=layout,
    )
    start = 0
    for b in batches:
        torch.addcmul(offset, b, gain, out=out[start : start + b.shape[0]])
        start += b.shape[0]
    return out


def input_map_key(module: torch.nn.Module) -> tuple:
    """The affine map a [0, 1] image goes through before the trunk, as ``(gain, offset)`` per channel.

    LPIPS v0.1's ScalingLayer on [-1, 1] input is ImageNet's mean/std on [0, 1] input written
    differently (its shift and scale are ``2 * mean - 1`` and ``2 * std``), so both give the same key
    and the same features up to float32 rounding of the input.
    """
    shift, scale = module.shift.flatten().tolist(), module.scale.flatten().tolist()
    if module.to_pm1:
        pairs = [(2.0 / c, (-1.0 - s) / c) for s, c in zip(shift, scale)]
    else:
        pairs = [(1.0 / c, -s / c) for s, c in zip(shift, scale)]
    return tuple((round(g, 5), round(o, 5)) for g, o in pairs)


def features_key(module: torch.nn.Module) -> tuple:
    """Identity of a trunk's raw features: backbone, weights and input map (not the taps).

    A random trunk (no weights file) is identified by the object itself, so it is never shared.
    """
    weights = module.weight_hashes.get("trunk") or f"random:{id(module.trunk)}"
    return ("trunk-features", module.config.backbone, weights, input_map_key(module))


def trunk_key(module: torch.nn.Module, kind: str, taps: tuple[str, ...], norm: str) -> tuple:
    """Identity of a trunk computation: same backbone, taps, input and weights give equal features.

    A random trunk (no weights file) is identified by the object itself, so it is never shared.
    """
    weights = module.weight_hashes.get("trunk") or f"random:{id(module.trunk)}"
    return (kind, module.config.backbone, tuple(taps), norm, weights)


class TrunkMetric(Metric):
    """A metric computed from the tapped outputs of a network trunk (LPIPS, perceptual losses).

    Subclasses set ``self.trunk`` (a :class:`~iqa_bench.backbones.TappedTrunk`), register their
    input normalisation, call :meth:`_init_features_key` once both are in place, and define
    :meth:`embed_features`; raw features are then shareable between metrics on the same trunk.
    """

    compilable = True

    def _init_features_key(self) -> None:
        self._features_key = features_key(self)  # fixed: weights and input map never change

    @property
    def features_key(self) -> tuple:
        return self._features_key

    @property
    def taps(self) -> tuple[str, ...]:
        return self.trunk.taps

    def features(self, x: torch.Tensor, *more: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw tapped outputs for ``x`` (and ``more`` batches of the same image size, concatenated
        along the batch in one trunk pass)."""
        return dict(zip(self.trunk.taps, self.trunk(normalise_input(self, x, *more))))

    def compare_features(
        self, fx: dict[str, torch.Tensor], fy: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Scores from two batches' raw features that nothing else holds (``forward``'s own trunk
        pass); metrics may consume them in place. Default: ``compare`` of both embeddings."""
        return self.compare(self.embed_features(fx), self.embed_features(fy))

    def embed(self, x: torch.Tensor):
        return self.embed_features(self.features(x))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Score two float RGB batches in [0, 1] of shape (N, 3, H, W); returns shape (N,).

        Both batches go through the trunk in one pass while together they hold at most
        ``JOINT_PASS_MAX_PIXELS`` pixels: convolutions on a batch twice as large use the CPU cores
        and GPUs better than two passes (the runner does the same for 2AFC and JND batches).
        """
        if x.shape != y.shape or 2 * x.shape[0] * x.shape[-2] * x.shape[-1] > JOINT_PASS_MAX_PIXELS:
            return super().forward(x, y)  # one trunk pass per batch
        if self.check_inputs:
            check_pair(x, y, self.min_size, repr(self.name))
        n = x.shape[0]
        features = self.features(x, y)
        return self.compare_features(
            {tap: f[:n] for tap, f in features.items()}, {tap: f[n:] for tap, f in features.items()}
        )

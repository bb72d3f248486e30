"""LPIPS (Zhang et al., CVPR 2018) on any registered trunk, with or without learned linear layers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import torch

from ..config import MetricCard
from ..errors import DataNotFoundError, InputError
from ..functional import (
    lpips_distance,
    lpips_distance_map,
    lpips_layer_distances,
    normalize_features,
    semantic_weight,
)
from ..weights import (
    holds_trained_trunk,
    load_lin_weights,
    load_trained_trunk,
    lpips_lin_path,
    sha256_file,
)
from .base import METRIC_TYPES, autocast_off, check_pair
from .trunk import (
    TrunkMetric,
    build_trunk,
    register_normalisation,
    spec_normalisation,
    trunk_key,
    trunk_min_size,
)

#: ``kind`` of the manifest ``iqa-bench train-lin`` writes beside its weights (``<stem>.json``).
TRAIN_LIN_MANIFEST_KIND = "iqa-bench train-lin"


def _check_trained_lin(
    path: Path,
    weights: list[torch.Tensor],
    channels: list[int],
    taps: tuple[str, ...],
    config: LPIPSConfig,
) -> None:
    """Linear weights must fit the trunk; a train-lin manifest beside them must name the same
    backbone, taps and version.

    Raises:
        InputError: Naming the file, what differs and the fix.
    """
    if config.trunk_weights is None and holds_trained_trunk(path):
        raise InputError(
            f"lin_weights: {path} also holds the trunk it was trained with (train-lin --mode "
            f"tune|scratch); set trunk_weights: {path} too, or these weights score on a trunk "
            "they were not trained with."
        )
    got = [int(w.numel()) for w in weights]
    if got != list(channels):
        raise InputError(
            f"lin_weights: {path} has {got} channels per layer but backbone {config.backbone!r} "
            f"with these taps gives {list(channels)}; use weights trained for this backbone/taps."
        )
    manifest = path.with_suffix(".json")
    if not manifest.is_file():
        return
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(info, dict) or info.get("kind") != TRAIN_LIN_MANIFEST_KIND:
        return
    trunk = info.get("trunk") or {}
    expected = {
        "backbone": config.backbone,
        "version": config.version,
        "taps": list(taps),
    }
    for key, value in expected.items():
        if key in trunk and trunk[key] != value:
            raise InputError(
                f"lin_weights: {path} was trained with {key} {trunk[key]!r} (see {manifest}) but "
                f"the metric uses {value!r}; set {key}: {trunk[key]!r} in the metric's params."
            )


def _load_trained_trunk(trunk, path: Path, config: LPIPSConfig) -> dict[str, str]:
    """Load ``trunk_weights`` into the trunk; ``{"trunk": sha256}`` of the file.

    Raises:
        DataNotFoundError: No such file.
        InputError: The file's trunk does not fit the backbone and taps.
    """
    if not path.is_file():
        raise DataNotFoundError(
            f"trunk_weights: {path} does not exist; pass the file written by `iqa-bench "
            "train-lin --mode tune|scratch` or drop trunk_weights."
        )
    state, digest = load_trained_trunk(path)
    try:
        trunk.load_trunk_state_dict(state)
    except (InputError, RuntimeError) as err:  # missing tensors, or tensors of other shapes
        raise InputError(
            f"trunk_weights: {path} does not fit backbone {config.backbone!r} with taps "
            f"{list(trunk.taps)} ({err}); use the file trained for this backbone (its manifest "
            f"{path.with_suffix('.json').name} names it)."
        ) from err
    return {"trunk": digest}


@dataclass(frozen=True)
class LPIPSConfig:
    """Parameters of ``lpips`` metrics.

    Attributes:
        backbone: Registered trunk name (``alex``, ``vgg16``, ``squeezenet1_1``, ...).
        version: ``0.1`` (current) or ``0.0`` (original release: unscaled input, other weights).
        lpips: True = learned per-channel linear layers; False = the unweighted baseline.
        lin_weights: Path to a file of linear weights (e.g. from ``train-lin``) instead of the
            official ones shipped with the ``lpips`` package.
        pretrained: Load the trunk's ImageNet weights (False = random trunk, for tests);
            ignored when ``trunk_weights`` is given.
        taps: Module names to tap; None = the backbone's declared taps.
        trunk_weights: Path to a file whose ``trunk.*`` tensors replace the trunk's weights (the
            one file ``train-lin --mode tune|scratch`` writes, linear weights included); its
            SHA-256 becomes the trunk's weight hash, so its features are never shared with the
            untrained trunk's.
        semantic_weight_tap: One of the taps: each layer's difference map is averaged with
            weights from the REFERENCE image's raw features there (their channel sum, resized to
            the layer), instead of a plain spatial mean: pyiqa's ``semantic_weight_layer``
            (LPIPS+, e.g. ``features.7`` = its layer 2 on alex). The metric is then asymmetric:
            ``metric(x, y)`` takes ``y`` as the reference. The tap should be a ReLU output
            (non-negative weights). None = the plain mean (symmetric LPIPS).
    """

    backbone: str = "alex"
    version: Literal["0.1", "0.0"] = "0.1"
    lpips: bool = True
    lin_weights: str | None = None
    pretrained: bool = True
    taps: tuple[str, ...] | None = None
    trunk_weights: str | None = None
    semantic_weight_tap: str | None = None


class SemanticEmbedding(NamedTuple):
    """Embedding of a semantic-weighted LPIPS (LPIPS+): the normalised features of every tap and
    the spatial weight from the raw features of ``semantic_weight_tap`` (used when the image is
    the reference)."""

    feats: list[torch.Tensor]
    weight: torch.Tensor


#: What ``LPIPS.embed`` returns: normalised features per tap, plus the spatial weight for LPIPS+.
Embedding = list[torch.Tensor] | SemanticEmbedding


@METRIC_TYPES.register("lpips")
class LPIPS(TrunkMetric):
    """Learned Perceptual Image Patch Similarity; ``distance_map`` gives the per-pixel map.

    Example:
        >>> metric = create_metric("lpips-alex")  # doctest: +SKIP
        >>> metric(x, y).shape  # doctest: +SKIP
        torch.Size([4])
    """

    Config = LPIPSConfig
    higher_is_better = False
    is_differentiable = True

    def __init__(self, config: LPIPSConfig, card: MetricCard) -> None:
        super().__init__(config, card)
        trunk_file = Path(config.trunk_weights).expanduser() if config.trunk_weights else None
        self.spec, self.trunk, hashes = build_trunk(
            config.backbone, config.taps, config.pretrained and trunk_file is None
        )
        if trunk_file is not None:
            hashes = _load_trained_trunk(self.trunk, trunk_file, config)
        self.weight_hashes.update(hashes)
        kind, self._norm_key = spec_normalisation(self.spec, f"lpips-v{config.version}")
        register_normalisation(self, kind, self.spec.mean, self.spec.std)
        self._init_features_key()
        n_layers = len(self.trunk.taps)
        self.n_lin = 0
        if config.lin_weights:
            path = Path(config.lin_weights).expanduser()
            if not path.is_file():
                raise DataNotFoundError(
                    f"lin_weights: {path} does not exist; pass the file written by "
                    "`iqa-bench train-lin` or drop lin_weights to use the official weights."
                )
        elif config.lpips:
            if self.spec.lpips_name is None:
                raise InputError(
                    f"backbone {config.backbone!r} has no official LPIPS linear weights; "
                    "set lpips: false or give lin_weights."
                )
            path = lpips_lin_path(self.spec.lpips_name, config.version)
        else:
            path = None
        if path is not None:
            weights = load_lin_weights(path, n_layers)
            if config.lin_weights:
                _check_trained_lin(path, weights, self.trunk.channels(), self.trunk.taps, config)
            for k, w in enumerate(weights):
                self.register_buffer(f"lin{k}", w)
            self.n_lin = len(weights)
            self.weight_hashes["lin"] = sha256_file(path)

        self._check_semantic_tap()

    def _check_semantic_tap(self) -> None:
        tap = self.config.semantic_weight_tap
        if tap is not None and tap not in self.trunk.taps:
            raise InputError(
                f"semantic_weight_tap: {tap!r} is not one of the metric's taps "
                f"({', '.join(self.trunk.taps)}); name one of them."
            )

    @property
    def symmetric(self) -> bool:
        """False with ``semantic_weight_tap``: the weights come from ``y``, the reference."""
        return self.config.semantic_weight_tap is None

    def _lin(self) -> list[torch.Tensor] | None:
        if not self.n_lin:
            return None
        return [getattr(self, f"lin{k}") for k in range(self.n_lin)]

    @property
    def min_size(self) -> int:
        return trunk_min_size(self.config.backbone, self.config.taps)

    @property
    def embedding_key(self) -> tuple:
        tap = self.config.semantic_weight_tap
        kind = "lpips-normalised" if tap is None else f"lpips-normalised+weight:{tap}"
        return trunk_key(self, kind, self.trunk.taps, self._norm_key)

    def embed_features(self, features: dict[str, torch.Tensor]) -> Embedding:
        """Unit-normalised float32 features of the taps (reusable across comparisons); with
        ``semantic_weight_tap`` also the spatial weight from that tap's raw features."""
        feats = [features[t] for t in self.trunk.taps]
        with autocast_off(feats[0].device.type):
            normalised = [normalize_features(f) for f in feats]
            tap = self.config.semantic_weight_tap
            if tap is None:
                return normalised
            return SemanticEmbedding(normalised, semantic_weight(features[tap]))

    def compare(self, ex: Embedding, ey: Embedding) -> torch.Tensor:
        """(N,) distances; with ``semantic_weight_tap`` ``ey`` is the reference's embedding."""
        if self.config.semantic_weight_tap is not None:
            return self.compare_layers(ex, ey).sum(dim=1)
        with autocast_off(ex[0].device.type):
            return lpips_distance(ex, ey, self._lin())

    def compare_layers(self, ex: Embedding, ey: Embedding) -> torch.Tensor:
        """(N, L) distance of each tap (in ``taps`` order) between two embedded batches."""
        if isinstance(ey, SemanticEmbedding):
            feats0, feats1, weight = ex.feats, ey.feats, ey.weight
        else:
            feats0, feats1, weight = ex, ey, None
        with autocast_off(feats0[0].device.type):
            return lpips_layer_distances(feats0, feats1, self._lin(), weight)

    def layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-layer distances, shape (N, L) with L = ``len(metric.taps)``; their sum over layers
        is ``metric(x, y)`` up to float32 rounding. Which depth agrees with people is the
        analysis of a new backbone (``iqa-bench report --per-layer``).

        Example:
            >>> from iqa_bench import create_metric
            >>> metric = create_metric("lpips-alex", pretrained=False)  # a random trunk
            >>> x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
            >>> per_layer = metric.layer_distances(x, y)
            >>> per_layer.shape, metric.taps[2]
            (torch.Size([2, 5]), 'features.7')
            >>> torch.allclose(per_layer.sum(dim=1), metric(x, y))
            True
        """
        if self.check_inputs:
            check_pair(x, y, self.min_size, repr(self.name))
        return self.compare_layers(self.embed(x), self.embed(y))

    def compare_features(
        self, fx: dict[str, torch.Tensor], fy: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """As ``compare`` of both embeddings, normalising and differencing the features in place
        where that is safe and pays: outside autograd, each tap its own tensor, and eager (an
        on-CPU VGG16 pair batch otherwise allocates, and page-faults in, hundreds of MB per call;
        compiled code fuses these steps itself, and mutating its inputs would add copies)."""
        feats = [fx[t] for t in self.trunk.taps], [fy[t] for t in self.trunk.taps]
        grad = torch.is_grad_enabled() and any(f.requires_grad for side in feats for f in side)
        distinct = all(
            len({f.untyped_storage().data_ptr() for f in side}) == len(side) for side in feats
        )
        if grad or not distinct or self.compiled or not self.symmetric:
            return super().compare_features(fx, fy)
        with autocast_off(feats[0][0].device.type):
            ex, ey = ([normalize_features(f, inplace=True) for f in side] for side in feats)
            return lpips_distance(ex, ey, self._lin(), overwrite=True)

    def distance_map(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-pixel distance map of shape (N, 1, H, W) (the reference's ``spatial=True``).

        Raises:
            InputError: For a semantic-weighted card (LPIPS+), which has no faithful map: each
                layer is averaged with the reference's weight resized to that layer's own grid
                and normalised there, so one image-sized map weighted by that weight upsampled
                to the image misses the score (measured 0.2-1.4% on AlexNet, against 0.01% for
                the plain map's mean and the plain score), and making it exact takes a
                per-layer rescaling or a division by a weight that is zero where the reference
                has no features. The per-pixel distances themselves are the map of the same card
                with ``semantic_weight_tap=None`` (pyiqa's ``spatial=True`` returns that map for
                LPIPS+ too).
        """
        if not self.symmetric:
            tap = self.config.semantic_weight_tap
            raise InputError(
                f"distance_map: {self.name!r} averages each layer with the reference's features "
                f"at {tap} resized to that layer and normalised there, so no one image-sized map "
                "has its score as weighted mean (about 1% off); for where the images differ use "
                f"create_metric({self.name!r}, semantic_weight_tap=None).distance_map(x, y), the "
                "same per-pixel distances, and for the score split by depth layer_distances(x, y)."
            )
        if self.check_inputs:
            check_pair(x, y, self.min_size, repr(self.name))
        ex, ey = self.embed(x), self.embed(y)
        with autocast_off(x.device.type):
            return lpips_distance_map(ex, ey, tuple(x.shape[-2:]), self._lin())

"""LPIPS distance from trunk features (Zhang et al., CVPR 2018), independent of any trunk.

Features are unit-normalised along channels in float32 (also under autocast: the squared-norm sum
overflows or loses all precision in fp16/bf16), differences squared, weighted per channel (learned
linear layers, or all ones for the unweighted baseline), averaged over space (LPIPS+: weighted by
the reference's features at one layer) and summed over layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

EPS = 1e-10


def normalize_features(
    feat: torch.Tensor, eps: float = EPS, *, inplace: bool = False
) -> torch.Tensor:
    """Unit-normalise a (N, C, H, W) feature map along channels, in float32.

    With ``inplace`` a float32 ``feat`` is overwritten (one map-sized allocation fewer; only for
    features nothing else holds, outside autograd).

    Example:
        >>> normalize_features(torch.tensor([[[[3.0]], [[4.0]]]])).flatten()
        tensor([0.6000, 0.8000])
    """
    feat = feat.float()
    if feat.dim() == 4 and feat.stride(1) == 1 and feat.shape[1] > 1:
        # Channels innermost (channels-last): one pass and no temporary the size of the map,
        # which on CPU costs more than the arithmetic (a fresh allocation is page-faulted in).
        # Its gradient is defined as 0 where a position's features are all zero.
        norm = torch.linalg.vector_norm(feat, dim=1, keepdim=True)
    else:
        # torch.linalg.vector_norm is far slower on CPU when channels are not the innermost axis;
        # clamp_min keeps the gradient finite where a position's features are all zero (the
        # value there is 0 / (1e-15 + eps) = 0, as in the reference).
        norm = (feat * feat).sum(dim=1, keepdim=True).clamp_min(1e-30).sqrt()
    return feat.div_(norm + eps) if inplace else feat / (norm + eps)


def _layer_weights(lin: Sequence[torch.Tensor] | None, feats: Sequence[torch.Tensor]) -> list:
    if lin is None:
        return [None] * len(feats)
    if len(lin) != len(feats):
        raise ValueError(f"lin: {len(lin)} weight vectors for {len(feats)} feature layers.")
    return list(lin)


def _channel_mean_square(diff: torch.Tensor) -> torch.Tensor:
    """(N, C) spatial mean of ``diff ** 2``; overwrites ``diff`` unless it requires grad.

    A plain square-and-sum, not ``torch.linalg.vector_norm``: on CPU the latter reduces over
    non-innermost axes (H, W of a channels-last tensor) 10-70x slower than this.
    """
    # Squared in place when no gradient needs the difference: a second map-sized allocation
    # costs more than the multiplication on CPU.
    square = diff * diff if diff.requires_grad else diff.mul_(diff)
    return square.sum(dim=(2, 3)) / (diff.shape[2] * diff.shape[3])


def lpips_distance(
    feats0: Sequence[torch.Tensor],
    feats1: Sequence[torch.Tensor],
    lin: Sequence[torch.Tensor] | None = None,
    *,
    overwrite: bool = False,
) -> torch.Tensor:
    """LPIPS distance per image from already-normalised features.

    Args:
        feats0, feats1: Per layer, (N, C_l, H_l, W_l) unit-normalised features (float32).
        lin: Per layer, (C_l,) non-negative channel weights; None for the unweighted baseline.
        overwrite: Compute the differences in ``feats0``'s tensors (for features the caller
            discards, outside autograd: one map-sized allocation fewer per layer).

    Returns:
        (N,) distances.

    Example:
        >>> f = [normalize_features(torch.rand(2, 4, 3, 3))]
        >>> lpips_distance(f, f)
        tensor([0., 0.])
    """
    total = None
    for f0, f1, w in zip(feats0, feats1, _layer_weights(lin, feats0)):
        per_channel = _channel_mean_square(f0.sub_(f1) if overwrite else f0 - f1)
        layer = per_channel.sum(dim=1) if w is None else per_channel @ w.to(per_channel)
        total = layer if total is None else total + layer
    return total


def _layer_map(f0: torch.Tensor, f1: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """(N, 1, H, W) channel-weighted squared difference of one layer's normalised features."""
    sq = (f0 - f1) ** 2
    if w is None:
        return sq.sum(dim=1, keepdim=True)
    return (sq * w.to(sq).view(1, -1, 1, 1)).sum(dim=1, keepdim=True)


def lpips_distance_map(
    feats0: Sequence[torch.Tensor],
    feats1: Sequence[torch.Tensor],
    out_size: tuple[int, int],
    lin: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-pixel LPIPS map: each layer's weighted map upsampled (bilinear) to ``out_size`` and summed.

    Returns:
        (N, 1, H, W) distance map; as in the reference, its mean is close to but not exactly the
        scalar distance (upsampling is not mean-preserving at the borders).
    """
    total = None
    for f0, f1, w in zip(feats0, feats1, _layer_weights(lin, feats0)):
        layer = _layer_map(f0, f1, w)
        layer = F.interpolate(layer, size=out_size, mode="bilinear", align_corners=False)
        total = layer if total is None else total + layer
    return total


def semantic_weight(feat: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) spatial weight from a reference's raw (un-normalised) features: their channel sum.

    pyiqa's LPIPS+ weights each layer by the reference's features resized to that layer, summed
    over channels as well as space; resizing is linear, so summing the channels first gives the
    same weights from one channel instead of hundreds.

    Example:
        >>> semantic_weight(torch.ones(1, 4, 2, 2)).flatten()
        tensor([4., 4., 4., 4.])
    """
    return feat.float().sum(dim=1, keepdim=True)


def _semantic_mean(layer: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(N,) average of a (N, 1, H, W) map weighted by ``weight`` resized (bilinear) to its size.

    Where a reference's weights sum to zero (all features zero at the tap) the plain mean is
    used: the weighted one is 0/0 there, and no position is favoured.
    """
    w = F.interpolate(weight, size=layer.shape[-2:], mode="bilinear", align_corners=False)
    total = w.sum(dim=(1, 2, 3))
    weighted = (layer * w).sum(dim=(1, 2, 3)) / torch.where(total > 0, total, 1.0)
    return torch.where(total > 0, weighted, layer.mean(dim=(1, 2, 3)))


def lpips_layer_distances(
    feats0: Sequence[torch.Tensor],
    feats1: Sequence[torch.Tensor],
    lin: Sequence[torch.Tensor] | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """LPIPS distance of each layer; their sum over layers is the distance.

    Args:
        feats0, feats1: Per layer, (N, C_l, H_l, W_l) unit-normalised features (float32).
        lin: Per layer, (C_l,) non-negative channel weights; None for the unweighted baseline.
        weight: (N, 1, h, w) non-negative spatial weight (:func:`semantic_weight` of the
            reference's features at one tap), resized to each layer: a weighted instead of a plain
            spatial mean (pyiqa's ``semantic_weight_layer``, LPIPS+). None: the plain mean.

    Returns:
        (N, L) distances, one column per layer.

    Example:
        >>> f0 = [normalize_features(torch.rand(2, 4, 3, 3)) for _ in range(2)]
        >>> f1 = [normalize_features(torch.rand(2, 4, 3, 3)) for _ in range(2)]
        >>> per_layer = lpips_layer_distances(f0, f1)
        >>> per_layer.shape
        torch.Size([2, 2])
        >>> torch.allclose(per_layer.sum(dim=1), lpips_distance(f0, f1))
        True
    """
    columns = []
    for f0, f1, w in zip(feats0, feats1, _layer_weights(lin, feats0)):
        if weight is None:
            per_channel = _channel_mean_square(f0 - f1)
            columns.append(per_channel.sum(dim=1) if w is None else per_channel @ w.to(per_channel))
        else:
            columns.append(_semantic_mean(_layer_map(f0, f1, w), weight))
    return torch.stack(columns, dim=1)

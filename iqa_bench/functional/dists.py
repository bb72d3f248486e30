"""DISTS distance from trunk features (Ding et al., TPAMI 2020), independent of any trunk.

Per feature map and channel, a structure term compares the spatial means and a texture term the
spatial (co)variances, both as SSIM-like ratios with constants ``c1 = c2 = 1e-6``; each channel
term is weighted by the learned ``alpha`` (structure) or ``beta`` (texture), the weights are divided
by their total sum, and the distance is ``1 - sum``. Identical images score 0. The formulas,
including the covariance as ``mean(xy) - mean(x) mean(y)``, are those of the reference
``DISTS_pytorch`` package, so float32 results agree with it to rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: The reference's stabilising constants of the structure (``C1``) and texture (``C2``) terms.
C1 = 1e-6
C2 = 1e-6


def dists_distance(
    feats0: Sequence[torch.Tensor],
    feats1: Sequence[torch.Tensor],
    alpha: torch.Tensor,
    beta: torch.Tensor,
) -> torch.Tensor:
    """DISTS distance per image.

    Args:
        feats0, feats1: Per feature set, (N, C_k, H_k, W_k) maps; the reference uses six: the raw
            [0, 1] image and VGG16's relu1_2 ... relu5_3 on its L2-pooled trunk.
        alpha, beta: Structure and texture weights of all channels in feature-set order, any shape
            holding ``sum_k C_k`` values (the reference's ``(1, 1475, 1, 1)``); divided here by
            ``alpha.sum() + beta.sum()``.

    Returns:
        (N,) distances (lower = more similar).

    Raises:
        ValueError: ``alpha``/``beta`` do not hold one weight per channel of the features.

    Example:
        >>> f = [torch.rand(2, 3, 8, 8), torch.rand(2, 5, 4, 4)]
        >>> w = torch.full((8,), 0.5)
        >>> dists_distance(f, f, w, w).abs().max() < 1e-6
        tensor(True)
    """
    channels = [f.shape[1] for f in feats0]
    if alpha.numel() != sum(channels) or beta.numel() != sum(channels):
        raise ValueError(
            f"alpha/beta hold {alpha.numel()}/{beta.numel()} weights for features of "
            f"{channels} channels (total {sum(channels)})."
        )
    total = alpha.sum() + beta.sum()
    alphas = (alpha.reshape(-1) / total).split(channels)
    betas = (beta.reshape(-1) / total).split(channels)
    score = None
    for f0, f1, a, b in zip(feats0, feats1, alphas, betas):
        structure, texture = _channel_terms(f0, f1)
        layer = structure @ a.to(structure) + texture @ b.to(texture)
        score = layer if score is None else score + layer
    return 1 - score


def _channel_terms(f0: torch.Tensor, f1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) structure and texture similarities of two feature maps."""
    m0, m1 = f0.mean(dim=(2, 3), keepdim=True), f1.mean(dim=(2, 3), keepdim=True)
    structure = (2 * m0 * m1 + C1) / (m0 * m0 + m1 * m1 + C1)
    var0 = ((f0 - m0) ** 2).mean(dim=(2, 3), keepdim=True)
    var1 = ((f1 - m1) ** 2).mean(dim=(2, 3), keepdim=True)
    cov = (f0 * f1).mean(dim=(2, 3), keepdim=True) - m0 * m1
    texture = (2 * cov + C2) / (var0 + var1 + C2)
    return structure.flatten(1), texture.flatten(1)

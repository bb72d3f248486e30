"""Named metrics: a metric card + its registered type -> a ready module."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ..config import MetricCard, from_mapping, load_metric_card
from .base import METRIC_TYPES, Metric


def build_metric(
    card: MetricCard, device: str | torch.device | None = None, **overrides: Any
) -> Metric:
    """Instantiate the metric a card describes, with parameter overrides.

    Raises:
        InputError: Unknown type or parameter, or a bad parameter value.
        WeightsUnavailableError: Its weights cannot be found or downloaded.
    """
    cls = METRIC_TYPES.get(card.type)
    params = {**card.params, **overrides}
    config = from_mapping(cls.Config, params, f"metric {card.name!r} params")
    if overrides:
        card = replace(card, params=params)
    metric = cls(config, card)
    metric.eval()
    if device is not None:
        metric.to(device)
    return metric


def create_metric(name: str, device: str | torch.device | None = None, **overrides: Any) -> Metric:
    """Build the named metric (see ``iqa-bench list``) on ``device``.

    Args:
        name: Metric card name, e.g. ``lpips-alex``, ``ssim``, ``l2-lab``.
        device: Where to put its weights (default CPU).
        **overrides: Card parameters to change, e.g. ``pretrained=False``.

    Returns:
        A module whose call ``metric(x, y)`` maps two (N, 3, H, W) float batches in [0, 1] to (N,).

    Example:
        >>> import torch, iqa_bench
        >>> metric = iqa_bench.create_metric("psnr")
        >>> metric(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1)).round()
        tensor([20.], dtype=torch.float64)
    """
    return build_metric(load_metric_card(name), device, **overrides)

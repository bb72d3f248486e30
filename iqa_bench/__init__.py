"""iqa-bench: benchmark perceptual image-similarity metrics against human judgments.

Example:
    >>> import torch, iqa_bench
    >>> metric = iqa_bench.create_metric("ssim")
    >>> metric(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape
    torch.Size([2])

Torch is imported lazily (only when a metric is built), so ``iqa_bench.stats``, ``iqa_bench.results``
and ``iqa_bench.reports`` stay torch-free.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_metric", "list_metrics"]


def __getattr__(name: str) -> Any:
    if name == "list_metrics":  # reads cards only: no torch
        from .catalog import list_metrics

        return list_metrics
    if name == "create_metric":
        from .metrics import create_metric

        return create_metric
    raise AttributeError(f"module 'iqa_bench' has no attribute {name!r}")

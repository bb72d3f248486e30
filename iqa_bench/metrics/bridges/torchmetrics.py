"""``torchmetrics:<name>``: functional image metrics of torchmetrics
(``pip install 'iqa-bench[torchmetrics]'``)."""

from __future__ import annotations

import torch

from ..base import METRIC_TYPES
from ._base import BridgedMetric, import_library


@METRIC_TYPES.register("torchmetrics")
class TorchmetricsMetric(BridgedMetric):
    """A ``torchmetrics.functional.image`` function, per image (see ``bridge_specs.TORCHMETRICS``).

    Example:
        >>> import torch, iqa_bench
        >>> metric = iqa_bench.create_metric("torchmetrics:psnr")
        >>> metric(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1)).round()
        tensor([20.])
    """

    library = "torchmetrics"
    is_differentiable = True

    def setup(self) -> None:
        module = import_library("torchmetrics", "torchmetrics.functional.image")
        self._fn = getattr(module, self.spec.call)

    def score(self, dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self._fn(dist, ref, **self.spec.fixed, **self.options)

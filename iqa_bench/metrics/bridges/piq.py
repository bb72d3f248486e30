"""``piq:<name>``: metrics computed by piq (``pip install 'iqa-bench[piq]'``)."""

from __future__ import annotations

import torch

from ..base import METRIC_TYPES
from ._base import BridgedMetric, import_library


@METRIC_TYPES.register("piq")
class PiqMetric(BridgedMetric):
    """A piq function called with ``data_range=1.0, reduction="none"`` (see ``bridge_specs.PIQ``).

    Example:
        >>> import torch, iqa_bench
        >>> metric = iqa_bench.create_metric("piq:psnr")
        >>> metric(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1)).round()
        tensor([20.])
    """

    library = "piq"
    is_differentiable = True

    def setup(self) -> None:
        self._fn = getattr(import_library("piq", "piq"), self.spec.call)

    def score(self, dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self._fn(dist, ref, **self.spec.fixed, **self.options)

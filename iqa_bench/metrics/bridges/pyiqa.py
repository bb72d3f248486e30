"""``pyiqa:<name>``: metrics computed by pyiqa (``pip install 'iqa-bench[pyiqa]'``).

pyiqa downloads a deep metric's weights while building it, into ``torch.hub.get_dir()``. The
bridge looks for the files of its table first: offline (``IQA_BENCH_OFFLINE``) a missing file is a
:class:`~iqa_bench.errors.WeightsUnavailableError` before anything is fetched, and online a failed
fetch becomes one, so ``--metrics all`` skips the metric with the reason.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ... import settings
from ...bridge_specs import BridgeSpec
from ...errors import WeightsUnavailableError
from ..base import METRIC_TYPES
from ._base import BridgedMetric, import_library


def missing_weights(spec: BridgeSpec) -> list[Path]:
    """The weights files of ``spec`` absent from torch's hub folder (where pyiqa keeps them)."""
    root = Path(torch.hub.get_dir())
    return [root / f for f in spec.weights if not (root / f).is_file()]


def _unavailable(name: str, missing: list[Path], why: str) -> WeightsUnavailableError:
    files = ", ".join(str(p) for p in missing)
    return WeightsUnavailableError(
        f"pyiqa weights of {name!r} unavailable ({why}): {files}. pyiqa downloads them on first "
        "use; run once online without IQA_BENCH_OFFLINE, or copy the files there."
    )


@METRIC_TYPES.register("pyiqa")
class PyiqaMetric(BridgedMetric):
    """A pyiqa model (``InferenceModel``) called as (distorted, reference) on [0, 1] RGB.

    Example:
        >>> import torch, iqa_bench
        >>> metric = iqa_bench.create_metric("pyiqa:psnr")
        >>> metric(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1)).round()
        tensor([20.])
    """

    library = "pyiqa"

    def setup(self) -> None:
        missing = missing_weights(self.spec)
        if missing and settings.offline():
            raise _unavailable(self.card.name, missing, "downloads are off")
        module = import_library("pyiqa", "pyiqa.models.inference_model")
        try:
            self.model = module.InferenceModel(
                self.spec.call, device="cpu", check_input_range=False, **self.options
            )
        except Exception as exc:  # network, hub and file errors of the download
            if not missing:
                raise
            raise _unavailable(self.card.name, missing, f"{type(exc).__name__}: {exc}") from exc

    def score(self, dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.model(dist, ref)

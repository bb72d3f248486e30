"""The shared half of every bridge: card config, orientation, size, input mapping, lazy import."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

import torch

from ...bridge_specs import bridge_spec, library_version
from ...config import MetricCard
from ...errors import InputError, MissingExtraError
from ..base import Metric, autocast_off


@dataclass(frozen=True)
class BridgeConfig:
    """Parameters of a bridged metric card.

    Attributes:
        name: The metric's name in the bridge table of its library (``haarpsi``, ``ms_ssim``).
        options: Keyword arguments for the library (e.g. ``{chromatic: false}``); the data range
            and reduction are the bridge's to set.
    """

    name: str
    options: dict = field(default_factory=dict)


def import_library(library: str, module: str) -> ModuleType:
    """Import ``module`` of an optional bridge library.

    Raises:
        MissingExtraError: The library is not installed; names the pip extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"metric type {library!r} needs the {library} package, which cannot be imported "
            f"({exc}). Fix: pip install 'iqa-bench[{library}]'."
        ) from exc


class BridgedMetric(Metric):
    """A metric computed by another library, fed and read as its bridge table says.

    ``metric(x, y)`` takes the distorted ``x`` and the reference ``y`` ([0, 1] RGB NCHW), the
    suite's convention for asymmetric metrics and the libraries' own argument order, and calls the
    library with them scaled by the spec's ``input_scale``. Every bridged metric counts as
    asymmetric (``symmetric`` is False), so the runner always passes a task's reference as ``y``.

    Attributes:
        library: Bridge library name, also the registered metric type.
        spec: The :class:`~iqa_bench.bridge_specs.BridgeSpec` of the bridged metric.
        library_version: Installed version of the library (for the manifest).
        higher_is_better: Per instance, from the spec.
    """

    library: ClassVar[str] = ""
    is_differentiable: ClassVar[bool] = False
    excludes_small_images: ClassVar[bool] = True
    Config = BridgeConfig

    def __init__(self, config: BridgeConfig, card: MetricCard) -> None:
        super().__init__(config, card)
        self.spec = bridge_spec(self.library, config.name)
        clash = sorted(set(config.options) & set(self.spec.fixed))
        if clash:
            raise InputError(
                f"metric {card.name!r} options: {', '.join(clash)} set by the bridge "
                f"({self.spec.fixed}); remove {clash[0]!r} from options."
            )
        self.options: dict[str, Any] = {**self.spec.defaults, **config.options}
        self.higher_is_better = self.spec.higher_is_better
        self.library_version = library_version(self.library)
        self.setup()

    def setup(self) -> None:
        """Import the library and prepare the call (subclasses)."""
        raise NotImplementedError

    def score(self, dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """The library's per-image scores of (distorted, reference) in its own input range."""
        raise NotImplementedError

    @property
    def min_size(self) -> int:
        return self.spec.min_size

    @property
    def symmetric(self) -> bool:
        # Some bridged metrics (VIF, PieAPP, ...) are asymmetric; treating all of them so keeps the
        # reference in the library's reference argument without a per-metric table entry.
        return False

    def use_channels_last(self) -> None:
        """Left as the library ships it: its code chooses its own layouts."""

    def compare(self, ex: torch.Tensor, ey: torch.Tensor) -> torch.Tensor:
        with autocast_off(ex.device.type):
            dist = ex.float() * self.spec.input_scale if self.spec.input_scale != 1 else ex.float()
            ref = ey.float() * self.spec.input_scale if self.spec.input_scale != 1 else ey.float()
            if self.spec.batched:
                out = self.score(dist, ref)
            else:
                out = torch.cat(
                    [self.score(d[None], r[None]).reshape(-1) for d, r in zip(dist, ref)]
                )
        return out.reshape(-1)

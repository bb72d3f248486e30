"""The metric interface: a thin ``nn.Module`` over a pure function, registered by type name."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import MetricCard
from ..errors import InputError
from ..registry import Registry
from .layout import adapt_conv_layouts

INPUT_TOLERANCE = 1e-6

#: ``torch.compile`` modes a metric accepts. Modes with CUDA graphs are left out on purpose: the
#: runner keeps one batch's embeddings alive across several ``embed`` calls (a 2AFC reference is
#: compared twice, metrics share trunk features), and a graph replay would overwrite them.
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")


def check_images(x: Any, arg: str = "x", min_size: int = 1, metric: str = "metric") -> None:
    """Validate one batch: float tensor, (N, 3, H, W), values in [0, 1], at least ``min_size`` pixels.

    Raises:
        InputError: Naming the argument, the bad value and the fix.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(
            f"{arg}: expected a torch.Tensor of shape (N, 3, H, W), got {type(x).__name__}."
        )
    if not x.is_floating_point():
        raise InputError(
            f"{arg}: expected float RGB in [0, 1], got dtype {x.dtype}; convert with x.float() / 255."
        )
    if x.ndim != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise InputError(f"{arg}: expected shape (N, 3, H, W), got {tuple(x.shape)}.{hint}")
    if x.shape[1] != 3:
        hint = (
            " It looks channels-last: use x.permute(0, 3, 1, 2)."
            if x.shape[-1] == 3
            else " For greyscale use x.expand(-1, 3, -1, -1)."
            if x.shape[1] == 1
            else ""
        )
        raise InputError(f"{arg}: expected 3 RGB channels, got shape {tuple(x.shape)}.{hint}")
    if x.shape[0] == 0:
        raise InputError(f"{arg}: empty batch (N = 0).")
    h, w = x.shape[-2:]
    if min(h, w) < min_size:
        raise InputError(
            f"{arg}: images of {h}x{w} are smaller than {metric} accepts (at least "
            f"{min_size}x{min_size}); upsample them or choose another metric."
        )
    lo, hi = torch.aminmax(x.detach())
    lo, hi = float(lo), float(hi)
    if lo != lo or hi != hi:
        raise InputError(f"{arg}: contains NaN values.")
    if lo < -INPUT_TOLERANCE or hi > 1 + INPUT_TOLERANCE:
        hint = " did you pass [-1, 1]? Map with (x + 1) / 2." if lo < 0 else ""
        hint = hint or (" did you pass [0, 255]? Divide by 255." if hi > 1.5 else "")
        raise InputError(f"{arg}: values must lie in [0, 1], got min {lo:.4g}, max {hi:.4g}.{hint}")


def check_pair(x: Any, y: Any, min_size: int = 1, metric: str = "metric") -> None:
    """Validate two batches and that their shapes agree (see :func:`check_images`)."""
    check_images(x, "x", min_size, metric)
    check_images(y, "y", min_size, metric)
    if x.shape != y.shape:
        raise InputError(
            f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}; "
            "resize or crop them to a common size first."
        )


def _inputs_in_weight_dtype(metric: Metric, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Forward pre-hook: float image batches in the dtype of the metric's weights.

    A float64 batch would otherwise reach a float32 trunk and fail inside the first convolution
    ("Input type (double) and bias type (float)"). Exact for float64 holding float32 values, and
    otherwise a rounding far below the trunk's own float32 error; metrics without weights (pixel
    metrics) convert inputs themselves and are left alone. Other dtypes (uint8, ...) pass
    unchanged to the input check, which names them.
    """
    dtype = next((t.dtype for t in metric.parameters() if t.is_floating_point()), None)
    if dtype is None:
        return None
    return tuple(
        a.to(dtype)
        if isinstance(a, torch.Tensor) and a.is_floating_point() and a.dtype != dtype
        else a
        for a in args
    )


def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """Context that disables autocast (for float32/float64 parts of a metric)."""
    return torch.autocast(device_type=device_type, enabled=False)


class Metric(nn.Module):
    """Base class: ``metric(x, y)`` -> (N,) for float RGB batches in [0, 1].

    Subclasses define ``Config`` (a frozen dataclass of their card parameters), ``embed`` (per-image
    work that can be reused, e.g. trunk features of a 2AFC reference) and ``compare``.

    Attributes:
        higher_is_better: True for similarities (PSNR, SSIM), False for distances.
        is_differentiable: Whether gradients flow to the inputs.
        card: The metric card with its effective parameters.
        weight_hashes: SHA-256 of every weights file used, by role.
    """

    higher_is_better: ClassVar[bool] = False
    is_differentiable: ClassVar[bool] = True
    #: Whether ``compile_for_inference`` compiles this type (network metrics, where it pays).
    compilable: ClassVar[bool] = False
    #: Whether a runner excludes (counts as failed, with the reason) samples smaller than
    #: ``min_size`` instead of stopping: for metrics whose size limit is part of their definition
    #: (MS-SSIM's five scales), not a sign of bad data.
    excludes_small_images: ClassVar[bool] = False
    Config: ClassVar[type]

    def __init__(self, config: Any, card: MetricCard) -> None:
        super().__init__()
        self.config = config
        self.card = card
        self.weight_hashes: dict[str, str] = {}
        self.check_inputs = True
        self.channels_last = False
        self.compiled = False  # set by compile_for_inference
        self.register_forward_pre_hook(_inputs_in_weight_dtype)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def min_size(self) -> int:
        """Smallest image side the metric accepts."""
        return 1

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return getattr(self, "_device", torch.device("cpu"))

    def _apply(self, fn, recurse=True):  # tracks the device of parameter-free metrics
        self._device = fn(torch.empty(0, device=getattr(self, "_device", "cpu"))).device
        return super()._apply(fn, recurse)

    def embed(self, x: torch.Tensor) -> Any:
        """Per-image representation compared by :meth:`compare` (default: the image itself)."""
        return x

    @property
    def symmetric(self) -> bool:
        """Whether ``metric(x, y) == metric(y, x)``. An asymmetric metric takes ``y`` as the
        reference image, and the runner passes a task's reference (a 2AFC ``ref``, a MOS
        ``ref``; for JND ``p0``) there."""
        return True

    @property
    def embedding_key(self) -> tuple | None:
        """Metrics with equal keys produce identical embeddings of the same image, so a runner may
        compute ``embed`` once and share it (e.g. ``lpips-vgg`` and ``lpips-vgg-baseline``).
        None: never shared."""
        return None

    def use_channels_last(self) -> None:
        """Run convolutional trunks in channels-last layout (faster on CPU and tensor cores; values
        may differ from the default layout in the last float32 bits). On CPU, spatial convolutions
        on small maps still run in NCHW, where they are faster (see :mod:`.layout`)."""
        self.channels_last = True
        self.to(memory_format=torch.channels_last)
        adapt_conv_layouts(self)

    @property
    def features_key(self) -> tuple | None:
        """Metrics on one trunk with equal keys get the same raw tapped features of an image, so a
        runner may compute :meth:`features` once (with the metric tapping the most layers) and
        give each metric its own :meth:`embed_features`. None: the metric has no trunk."""
        return None

    @property
    def taps(self) -> tuple[str, ...]:
        """Trunk modules whose outputs :meth:`embed_features` needs (empty: no trunk)."""
        return ()

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs of the tapped trunk modules for a batch, by module name."""
        raise NotImplementedError(f"{type(self).__name__} has no trunk")

    def embed_features(self, features: dict[str, torch.Tensor]) -> Any:
        """:meth:`embed` from raw features (``features`` may hold more taps than needed)."""
        raise NotImplementedError(f"{type(self).__name__} has no trunk")

    def compile_for_inference(self, mode: str = "default") -> bool:
        """Run ``embed`` and ``compare`` through ``torch.compile`` (fused kernels on the device).

        The first batch of each new shape pays the compilation (seconds to a minute); values may
        differ from eager execution in the last float32 bits. Metrics that are not ``compilable``
        (cheap pixel metrics, CPU reference conventions) are left as they are.

        Args:
            mode: One of :data:`COMPILE_MODES`.

        Returns:
            Whether this metric was compiled.

        Raises:
            InputError: An unknown or CUDA-graph mode.

        Example:
            >>> metric = create_metric("lpips-alex")  # doctest: +SKIP
            >>> metric.compile_for_inference()  # doctest: +SKIP
            True
        """
        if mode not in COMPILE_MODES:
            raise InputError(
                f"compile mode {mode!r}: use one of {', '.join(COMPILE_MODES)} (CUDA-graph modes "
                "would overwrite embeddings the runner still holds)."
            )
        if not self.compilable:
            return False
        # Instance attributes shadow the methods, so forward() and the runner use the compiled code.
        for method in ("embed", "compare", "features", "embed_features"):
            setattr(self, method, torch.compile(getattr(self, method), mode=mode))
        self.compiled = True
        return True

    def compare(self, ex: Any, ey: Any) -> torch.Tensor:
        """(N,) scores between two embedded batches."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Score two float RGB batches in [0, 1] of shape (N, 3, H, W); returns shape (N,).

        Any float dtype is accepted: metrics with weights get the batches in their weights' dtype
        (float64 images into a float32 trunk), pixel metrics compute in float64.
        """
        if self.check_inputs:
            check_pair(x, y, self.min_size, repr(self.name))
        return self.compare(self.embed(x), self.embed(y))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, version={self.card.version}, params={self.card.params}"


METRIC_TYPES: Registry[type[Metric]] = Registry("metric type")

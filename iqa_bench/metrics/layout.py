"""Per-convolution memory layout for channels-last trunks on CPU.

oneDNN runs most convolutions faster on channels-last (NHWC) tensors, and max-pooling about ten
times faster, but spatial convolutions on tiny feature maps (4x4 and below: AlexNet's conv3-5 and
SqueezeNet's last expand3x3 layers at 64x64 input, VGG16's conv5 block) run 1.2-1.4x faster on
contiguous (NCHW) tensors; at 7x7 and 8x8 the two layouts are within a few percent. A channels-last
trunk therefore runs those convolutions alone in NCHW, with a contiguous copy of their frozen
weights (extra memory: the spatial convolution weights once more, 59 MB for VGG16), and hands
their outputs back in channels-last so pooling and the next layers keep the fast layout.
Measured by ``benchmarks/conv_layout.py``. The rule depends on shapes only, so a given input always
takes the same path (values may differ from an all-NCHW pass in the last float32 bits, as
channels-last already does).

Example:
    >>> import torchvision
    >>> trunk = torchvision.models.alexnet().features.eval().requires_grad_(False)
    >>> adapt_conv_layouts(trunk.to(memory_format=torch.channels_last))  # conv1-conv5
    5
"""

from __future__ import annotations

import torch
from torch import nn

#: Spatial convolutions whose input map has at most this many positions run in NCHW on CPU.
SMALL_MAP_POSITIONS = 16


def runs_in_nchw(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether the layout rule runs ``conv`` on input ``x`` in NCHW (CPU, small spatial map)."""
    return (
        x.device.type == "cpu"
        and x.dim() == 4
        and conv.kernel_size != (1, 1)
        and x.shape[-1] * x.shape[-2] <= SMALL_MAP_POSITIONS
        and x.dtype == conv.weight.dtype
    )


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` that runs in NCHW where its input map is small (CPU, frozen weights only).

    Installed by :func:`adapt_conv_layouts` in place of a plain ``nn.Conv2d`` (same parameters and
    state-dict names). ``weight_nchw`` is a non-persistent contiguous copy of ``weight``, refreshed
    by :func:`adapt_conv_layouts`; a weight that requires grad always takes the ordinary path, so
    training never reads a stale copy.
    """

    weight_nchw: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if runs_in_nchw(self, x) and not self.weight.requires_grad:
            out = self._conv_forward(x.contiguous(), self.weight_nchw, self.bias)
            return out.contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def adapt_conv_layouts(module: nn.Module) -> int:
    """Give every spatial ``nn.Conv2d`` in ``module`` the small-map NCHW path; returns how many.

    Call after the weights are loaded and the module is in channels-last layout; calling again
    refreshes the NCHW weight copies. Pointwise (1x1) convolutions keep channels-last, which is
    faster for them at every size measured.
    """
    count = 0
    for conv in module.modules():
        if type(conv) not in (nn.Conv2d, SmallMapConv2d) or conv.kernel_size == (1, 1):
            continue
        conv.__class__ = SmallMapConv2d  # same parameters and names: state dicts are unchanged
        conv.register_buffer("weight_nchw", conv.weight.detach().contiguous(), persistent=False)
        count += 1
    return count

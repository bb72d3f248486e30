"""The registered trunks (AlexNet, SqueezeNet 1.1, VGG16 and DISTS's L2-pooled VGG16), built without
importing torchvision.

``torchvision.models`` imports ``torchvision.ops``, which imports ``torch._dynamo``: seconds of start-up
for three small networks. These builders reproduce torchvision's module layout (so its checkpoints and
the features-only files load with ``strict=True``) and its random initialisation, in the same order
(so a seeded random trunk has the same weights as torchvision's); ``tests/test_startup.py`` checks
both against torchvision.

The custom initialisations skip meta tensors: those hold no values, and ``normal_`` on a meta tensor
runs a Python reference implementation that imports ``torch._dynamo`` (seconds). Pretrained trunks are
built on the meta device and then given the checkpoint's tensors.

Example:
    >>> net = alexnet()
    >>> net.features[0], net(torch.rand(1, 3, 64, 64)).shape
    (Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2)), torch.Size([1, 1000]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: torchvision's VGG configuration "D" (VGG16): (output channels, number of 3x3 convolutions) of each
#: stage; every stage ends with a 2x2 max pooling.
_VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


class AlexNet(nn.Module):
    """torchvision's ``AlexNet`` (one-weird-trick variant), default PyTorch initialisation."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class Fire(nn.Module):
    """SqueezeNet's fire module: a 1x1 squeeze, then 1x1 and 3x3 expansions concatenated."""

    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.inplanes = inplanes
        self.squeeze = nn.Conv2d(inplanes, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [
                self.expand1x1_activation(self.expand1x1(x)),
                self.expand3x3_activation(self.expand3x3(x)),
            ],
            1,
        )


class SqueezeNet(nn.Module):
    """torchvision's ``SqueezeNet`` version 1.1, with its initialisation."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(128, 32, 128, 128),
            Fire(256, 32, 128, 128),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            Fire(256, 48, 192, 192),
            Fire(384, 48, 192, 192),
            Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256),
        )
        final_conv = nn.Conv2d(512, num_classes, kernel_size=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.is_meta:  # see the module docstring
                if m is final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


class VGG(nn.Module):
    """torchvision's ``VGG`` with its initialisation (``init_weights=True``)."""

    def __init__(self, features: nn.Module, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if not isinstance(m, (nn.Conv2d, nn.Linear)) or m.weight.is_meta:
                continue  # see the module docstring
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class L2Pool2d(nn.Module):
    """DISTS's L2 pooling (Ding et al., 2020): ``sqrt(conv(x^2, g) + 1e-12)``, stride 2, per channel.

    ``g`` is the reference's 5-tap Hanning window without its zero end taps, ``[0.5, 1, 0.5]``, as a
    normalised 3x3 outer product; its entries are powers of two, so the float32 filter equals the
    reference's bit for bit. The filter is made in ``forward`` rather than held as a buffer: a
    buffer would be a tensor the VGG16 weights file lacks (or, non-persistent, would keep the
    pretrained trunk off the meta-device build path in ``iqa_bench.metrics.trunk``).

    Example:
        >>> L2Pool2d()(torch.ones(1, 2, 4, 4))[0, 0]  # border windows see the zero padding
        tensor([[0.7500, 0.8660],
                [0.8660, 1.0000]])
    """

    # Read by the backbone's shape arithmetic (``iqa_bench.backbones._sequential_sizes``).
    kernel_size = 3
    stride = 2
    padding = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = torch.tensor([0.5, 1.0, 0.5], dtype=x.dtype, device=x.device)
        window = torch.outer(taps, taps) / 4.0
        weight = window.expand(x.shape[1], 1, 3, 3)
        out = F.conv2d(x * x, weight, stride=self.stride, padding=self.padding, groups=x.shape[1])
        return (out + 1e-12).sqrt()


def _vgg_features(
    stages: tuple[tuple[int, int], ...], pool: type[nn.Module] | None = None
) -> nn.Sequential:
    modules: list[nn.Module] = []
    channels = 3
    for width, n_convs in stages:
        for _ in range(n_convs):
            modules += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = width
        modules.append(pool() if pool else nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*modules)


def alexnet() -> AlexNet:
    """AlexNet with random weights, as ``torchvision.models.alexnet(weights=None)``."""
    return AlexNet()


def squeezenet1_1() -> SqueezeNet:
    """SqueezeNet 1.1 with random weights, as ``torchvision.models.squeezenet1_1(weights=None)``."""
    return SqueezeNet()


def vgg16() -> VGG:
    """VGG16 with random weights, as ``torchvision.models.vgg16(weights=None)``."""
    return VGG(_vgg_features(_VGG16_STAGES))


def vgg16_l2pool() -> VGG:
    """VGG16 with every max pooling replaced by :class:`L2Pool2d` (the DISTS trunk), random weights.

    Module names, parameters and the order of random draws are those of :func:`vgg16` (pooling
    holds no parameters), so VGG16's weights file loads unchanged and a seeded random trunk has
    the same convolutions as a seeded :func:`vgg16`.
    """
    return VGG(_vgg_features(_VGG16_STAGES, pool=L2Pool2d))

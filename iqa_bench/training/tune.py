"""What ``train-lin --mode tune|scratch`` optimises: the trunk together with the linear layers.

The reference ``lpips.trainer.Trainer`` with ``pnet_tune=True`` (``tune``; with ``pnet_rand=True``
as well: ``scratch``) hands the trunk's parameters to the same Adam as the linear layers and the
ranking network, at the same learning rate, and backpropagates the ranking loss through the
trunk. :class:`TrunkTrainer` does the same on an iqa-bench LPIPS metric (``lpips=False``: the
linear weights live in the trainer's head), with the trunk's rate and which of its parameters
train as options. The trunk stays in eval mode: the reference trunks (alex, squeezenet, vgg16)
have no batch normalisation or dropout in their features, so this changes nothing there, and for
a zoo backbone with batch normalisation it keeps the running statistics the metric scores with.

Example:
    >>> from iqa_bench.training.features import feature_metric
    >>> metric = feature_metric("alex", None, "0.1", pretrained=False)
    >>> trainer = TrunkTrainer(metric, TrunkOptions(lr=1e-4, trunk_lr=1e-5, train=("features.8.*",)))
    >>> [name for name, _ in trainer.trunk_params]
    ['features.8.weight', 'features.8.bias']
    >>> images = {k: torch.rand(4, 3, 64, 64) for k in ("ref", "p0", "p1")}
    >>> loss, credit = trainer.step_images(images, torch.rand(4))
    >>> credit.shape
    (4,)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..metrics import LPIPS
from ..weights import TRUNK_PREFIX
from .features import pair_means
from .model import LinTrainer


@dataclass(frozen=True)
class TrunkOptions:
    """Hyper-parameters of a trunk-training step (defaults: the reference trainer's).

    Attributes:
        lr: Learning rate of the linear layers and the ranking network.
        trunk_lr: Learning rate of the trunk; None = ``lr`` (the reference: one rate for all).
        train: Glob patterns of the trunk parameter names that train (``*`` = all).
        dropout: Dropout on the per-position squared differences (reference 0.5).
        beta1, chn_mid, init, seed: As :class:`~iqa_bench.training.LinTrainer`.
    """

    lr: float = 1e-4
    trunk_lr: float | None = None
    train: tuple[str, ...] = ("*",)
    dropout: float = 0.5
    beta1: float = 0.5
    chn_mid: int = 32
    init: Literal["random", "ones"] = "random"
    seed: int = 0


def select_trunk_parameters(
    trunk: nn.Module, patterns: Sequence[str]
) -> list[tuple[str, nn.Parameter]]:
    """Trunk parameters (named as in the full network) matching any of ``patterns``.

    Raises:
        InputError: A pattern that matches no parameter (the names are listed).
    """
    params = {p.data_ptr(): p for p in trunk.parameters()}
    named: list[tuple[str, nn.Parameter]] = []
    seen: set[int] = set()
    for name, tensor in trunk.trunk_state_dict().items():
        param = params.get(tensor.data_ptr())
        if param is not None and id(param) not in seen:
            seen.add(id(param))
            named.append((name, param))
    for pattern in patterns:
        if not any(fnmatchcase(name, pattern) for name, _ in named):
            shown = ", ".join(name for name, _ in named[:12])
            raise InputError(
                f"trunk_train: pattern {pattern!r} matches no trunk parameter; the trunk has "
                f"{len(named)}: {shown}{', ...' if len(named) > 12 else ''}."
            )
    return [(n, p) for n, p in named if any(fnmatchcase(n, pat) for pat in patterns)]


class TrunkTrainer(LinTrainer):
    """:class:`LinTrainer` whose steps also train (part of) the metric's trunk.

    Args:
        metric: An ``lpips=False`` LPIPS metric (see ``feature_metric``); its trunk is trained
            in place.
        options: Learning rates, trained parameters, dropout and the head's settings.
        dtype: Parameter dtype of the head and ranking network.
    """

    def __init__(
        self, metric: LPIPS, options: TrunkOptions, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__(
            metric.trunk.channels(),
            options.lr,
            options.beta1,
            options.chn_mid,
            options.init,
            options.seed,
            metric.device,
            dtype,
        )
        self.metric = metric
        self.options = options
        self.trunk_params = select_trunk_parameters(metric.trunk, options.train)
        for _, param in self.trunk_params:
            param.requires_grad_(True)
        trunk_lr = options.lr if options.trunk_lr is None else options.trunk_lr
        self._trunk_ratio = trunk_lr / options.lr
        self.optimizer.add_param_group(
            {"params": [p for _, p in self.trunk_params], "lr": trunk_lr}
        )

    def set_lr(self, lr: float) -> None:
        """Rate of the head; the trunk's follows it in the fixed ratio ``trunk_lr / lr``."""
        super().set_lr(lr)
        self.optimizer.param_groups[-1]["lr"] = lr * self._trunk_ratio

    def step_images(
        self, images: dict[str, torch.Tensor], h: torch.Tensor
    ) -> tuple[float, np.ndarray]:
        """One optimiser step on ``ref``/``p0``/``p1`` batches in [0, 1] (one trunk pass)."""
        n = images["ref"].shape[0]
        feats = self.metric.features(images["ref"], images["p0"], images["p1"])
        embedded = self.metric.embed_features(feats)
        e_ref, e0, e1 = ([f[i * n : (i + 1) * n] for f in embedded] for i in range(3))
        x0 = pair_means(e_ref, e0, self.options.dropout)
        x1 = pair_means(e_ref, e1, self.options.dropout)
        return self.step(x0, x1, h)

    def trunk_state(self) -> dict[str, torch.Tensor]:
        """The trunk's tensors as the metric's ``trunk_weights`` file names them."""
        state = self.metric.trunk.trunk_state_dict()
        return {TRUNK_PREFIX + k: v.detach().cpu().clone() for k, v in state.items()}

    def file_state(self) -> dict[str, torch.Tensor]:
        """Linear weights and trunk in one file (``lin_weights`` and ``trunk_weights``)."""
        return self.head.lin_state() | self.trunk_state()

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"trunk": self.metric.trunk.trunk_state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.metric.trunk.load_trunk_state_dict(state["trunk"])
        super().load_state_dict(state)

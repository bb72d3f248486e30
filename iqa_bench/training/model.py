"""What ``train-lin`` optimises: LPIPS linear layers and the paper's small ranking network.

The LPIPS distance with learned weights is ``d = sum_l sum_c w_lc * mean_hw((f0 - f1)_lc^2)`` for
unit-normalised trunk features, so once the per-channel spatial means of the squared differences
(``x``, one vector of ``sum_l C_l`` numbers per image pair) are known, ``d = x @ w``: training is a
dot product, a 5 -> 32 -> 32 -> 1 network and Adam. Everything here mirrors the reference ``lpips``
package (``lpips.BCERankingLoss``, ``lpips.Dist2LogitLayer``, ``lpips.trainer.Trainer``):

- the ranking network maps ``(d0, d1, d0 - d1, d0 / (d1 + 0.1), d1 / (d0 + 0.1))`` through 1x1
  convolutions with LeakyReLU(0.2) and a sigmoid to the predicted fraction preferring ``p1``;
- the loss is the binary cross-entropy of that prediction against the human fraction ``h``
  (the reference maps ``h`` to ``2h - 1`` and back: the target is ``h`` itself);
- Adam over the linear weights and the ranking network (``betas = (beta1, 0.999)``), then the linear
  weights are clamped to be non-negative after every step;
- the learning rate is constant for ``n_epochs`` epochs, then falls linearly to 0 over
  ``n_epochs_decay`` more (the reference's ``update_learning_rate``; see :func:`learning_rate`).

Example:
    >>> trainer = LinTrainer([64, 192], seed=0)
    >>> x0, x1, h = torch.rand(50, 256), torch.rand(50, 256), torch.rand(50)
    >>> loss, credit = trainer.step(x0, x1, h)
    >>> bool((trainer.head.weight >= 0).all())
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

RANK_EPS = 0.1


class LinearHead(nn.Module):
    """Non-negative per-channel weights of every tapped layer, as one vector.

    Args:
        channels: Channels per tapped layer, in tap order.
        init: ``random`` = the reference's start (``nn.Conv2d``'s default, uniform in
            ``+-1/sqrt(C_l)``, clamped only after the first step); ``ones`` = the unweighted
            baseline (``lpips=False``).
        generator: Random source of ``random`` (default: torch's global one).
    """

    def __init__(
        self,
        channels: Sequence[int],
        init: Literal["random", "ones"] = "random",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.channels = [int(c) for c in channels]
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels: need positive channel counts per layer, got {channels}.")
        if init == "ones":
            weight = torch.ones(sum(self.channels))
        elif init == "random":
            parts = []
            for c in self.channels:
                bound = 1.0 / c**0.5
                parts.append(torch.rand(c, generator=generator) * 2 * bound - bound)
            weight = torch.cat(parts)
        else:
            raise InputError(f"init: {init!r} is not one of 'random', 'ones'.")
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, sum C) per-channel mean squared differences -> (B,) distances."""
        return x @ self.weight

    @torch.no_grad()
    def clamp_(self) -> None:
        """Make every weight non-negative (after each optimiser step, as the reference does)."""
        self.weight.clamp_(min=0)

    def layer_weights(self) -> list[torch.Tensor]:
        """The weights split per layer, each of shape ``(C_l,)``."""
        return list(self.weight.detach().split(self.channels))

    def lin_state(self) -> dict[str, torch.Tensor]:
        """``{"lin{k}.weight": (C_k,)}``, the file format ``load_lin_weights`` reads."""
        return {
            f"lin{k}.weight": w.clone().float().cpu() for k, w in enumerate(self.layer_weights())
        }


class RankingNet(nn.Module):
    """The reference ``Dist2LogitLayer``: two distances -> predicted fraction preferring ``p1``.

    Its ``model`` has the reference's layout, so state dicts load either way.

    Args:
        chn_mid: Width of the two hidden 1x1 convolutions (reference: 32).
        eps: Added to the denominators of the two distance ratios (reference: 0.1).
    """

    def __init__(self, chn_mid: int = 32, eps: float = RANK_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.model = nn.Sequential(
            nn.Conv2d(5, chn_mid, 1, stride=1, padding=0, bias=True),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(chn_mid, chn_mid, 1, stride=1, padding=0, bias=True),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(chn_mid, 1, 1, stride=1, padding=0, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, d0: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
        """(B,) distances -> (B,) probabilities in (0, 1)."""
        eps = self.eps
        x = torch.stack((d0, d1, d0 - d1, d0 / (d1 + eps), d1 / (d0 + eps)), dim=1)
        for layer in self.model:
            # A 1x1 convolution of (B, C, 1, 1) is a linear map, and much faster computed as one.
            conv = isinstance(layer, nn.Conv2d)
            x = F.linear(x, layer.weight.flatten(1), layer.bias) if conv else layer(x)
        return x.view(-1)


def bce_ranking_loss(prob: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of predicted vs human fractions preferring ``p1``."""
    return F.binary_cross_entropy(prob, h.to(prob))


def learning_rate(epoch: int, lr: float, n_epochs: int, n_epochs_decay: int) -> float:
    """Learning rate of 1-based ``epoch`` under the reference schedule.

    The reference lowers the rate by ``lr / n_epochs_decay`` at the end of every epoch after the
    ``n_epochs``-th, so epochs ``1 .. n_epochs + 1`` run at ``lr`` and the decay epochs at
    ``lr, lr (1 - 1/k), ..., lr / k`` for ``k = n_epochs_decay``: linear to 0 at the end.

    Example:
        >>> [round(learning_rate(e, 1e-4, 5, 5) / 1e-4, 2) for e in range(1, 11)]
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2]
    """
    if epoch < 1:
        raise ValueError(f"epoch: epochs count from 1, got {epoch}.")
    decayed = max(0, epoch - n_epochs - 1)
    if n_epochs_decay <= 0:
        return lr
    return lr * max(0.0, 1.0 - decayed / n_epochs_decay)


class LinTrainer:
    """Linear head + ranking network + Adam: one call of :meth:`step` is one reference step.

    Args:
        channels: Channels per tapped layer.
        lr: Initial learning rate (reference 1e-4).
        beta1: Adam's first-moment decay (reference 0.5; the second is 0.999).
        chn_mid: Hidden width of the ranking network.
        init: Start of the linear weights (see :class:`LinearHead`).
        seed: Seed of the initial weights (the global RNG is left untouched).
        device: Where the parameters live.
        dtype: Parameter dtype (float32; float64 for exact comparisons).
    """

    def __init__(
        self,
        channels: Sequence[int],
        lr: float = 1e-4,
        beta1: float = 0.5,
        chn_mid: int = 32,
        init: Literal["random", "ones"] = "random",
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.head = LinearHead(channels, init)
            self.rank = RankingNet(chn_mid)
        self.head.to(device=device, dtype=dtype)
        self.rank.to(device=device, dtype=dtype)
        self.lr = lr
        self.optimizer = torch.optim.Adam(
            list(self.head.parameters()) + list(self.rank.parameters()),
            lr=lr,
            betas=(beta1, 0.999),
        )

    def set_lr(self, lr: float) -> None:
        """Learning rate of the following steps."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.lr = lr

    def step(self, x0: torch.Tensor, x1: torch.Tensor, h: torch.Tensor) -> tuple[float, np.ndarray]:
        """One optimiser step on a batch; returns the loss and the 2AFC credit before the step.

        Args:
            x0, x1: (B, sum C) per-channel mean squared differences of (ref, p0) and (ref, p1).
            h: (B,) fraction of people preferring ``p1``.
        """
        param = self.head.weight
        x0, x1, h = (t.to(device=param.device, dtype=param.dtype) for t in (x0, x1, h))
        d0, d1 = self.head(x0), self.head(x1)
        loss = bce_ranking_loss(self.rank(d0, d1), h)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.head.clamp_()
        return float(loss.detach()), twoafc_credit_torch(d0.detach(), d1.detach(), h)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly (for checkpoints)."""
        return {
            "head": self.head.state_dict(),
            "rank": self.rank.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr": self.lr,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.head.load_state_dict(state["head"])
        self.rank.load_state_dict(state["rank"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.set_lr(float(state["lr"]))


def twoafc_credit_torch(d0: torch.Tensor, d1: torch.Tensor, h: torch.Tensor) -> np.ndarray:
    """Per-sample 2AFC credit (ties earn 0.5), as :func:`iqa_bench.stats.twoafc_credit`."""
    d0, d1, h = (t.detach().double().cpu() for t in (d0, d1, h))
    credit = (d0 < d1) * (1 - h) + (d1 < d0) * h + (d0 == d1) * 0.5
    return credit.numpy()

"""train-lin against the reference ``lpips`` trainer: same start and batch -> same step.

The reference ``Trainer`` (``lpips/trainer.py``) is built untrained (``is_train=True``) on a random
alex trunk (``pnet_rand=True``: no download); its dropout is set to 0 (iqa-bench's cached-features
path has none), and its trunk, initial linear weights and ranking network are copied into
iqa-bench's. One ``optimize_parameters()`` and one ``LinTrainer.step`` must then agree.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

lpips = pytest.importorskip("lpips", reason="the reference lpips package is not installed")
from lpips.trainer import Trainer  # noqa: E402

from iqa_bench.training import (  # noqa: E402
    LinTrainer,
    RankingNet,
    batch_means,
    feature_metric,
    learning_rate,
)

TOL = 1e-6


def _reference_trainer(lr: float = 1e-4) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer()
    trainer.initialize(
        model="lpips",
        net="alex",
        use_gpu=False,
        is_train=True,
        pnet_rand=True,
        lr=lr,
        beta1=0.5,
    )
    for module in trainer.net.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return trainer


def _reference_lin(trainer: Trainer) -> torch.Tensor:
    return torch.cat([lin.model[-1].weight.detach().reshape(-1) for lin in trainer.net.lins])


def _ours_from(trainer: Trainer, lr: float = 1e-4):
    metric = feature_metric("alex", None, "0.1", pretrained=False)
    # Reference trunk slices keep torchvision's indices: slice2.3.weight == features.3.weight.
    state = {
        f"features.{key.split('.', 1)[1]}": value
        for key, value in trainer.net.net.state_dict().items()
    }
    metric.trunk.load_trunk_state_dict(state)
    ours = LinTrainer(metric.trunk.channels(), lr=lr, beta1=0.5)
    with torch.no_grad():
        ours.head.weight.copy_(_reference_lin(trainer))
    ours.rank.load_state_dict(trainer.rankLoss.net.state_dict())
    return metric, ours


def _batch(n: int = 8):
    gen = torch.Generator().manual_seed(1)
    images = {k: torch.rand(n, 3, 64, 64, generator=gen) for k in ("ref", "p0", "p1")}
    h = torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.4, 0.6])[:n]
    return images, h


def test_one_step_matches_the_reference_trainer():
    reference = _reference_trainer()
    metric, ours = _ours_from(reference)
    start = ours.head.weight.detach().clone()
    images, h = _batch()

    reference.set_input(
        {"ref": images["ref"] * 2 - 1, "p0": images["p0"] * 2 - 1, "p1": images["p1"] * 2 - 1}
        | {"judge": h.view(-1, 1)}
    )
    reference.optimize_parameters()
    x0, x1 = batch_means(metric, images)
    loss, credit = ours.step(x0.clone(), x1.clone(), h)

    assert loss == pytest.approx(float(reference.loss_total.detach()), abs=TOL)
    updated = ours.head.weight.detach()
    assert torch.allclose(updated, _reference_lin(reference), rtol=0, atol=TOL)
    for key, value in reference.rankLoss.net.state_dict().items():
        assert torch.allclose(ours.rank.state_dict()[key], value, rtol=0, atol=TOL), key
    # The step did something: weights moved by ~lr and the negative ones were clamped to 0.
    assert (updated - start.clamp(min=0)).abs().max() > 1e-5
    assert (start < 0).any() and (updated >= 0).all()
    # The reference's per-sample accuracy counts ties as 1 - h; no ties here, so they agree.
    assert credit.tolist() == pytest.approx(reference.acc_r.tolist(), abs=TOL)


def test_ranking_net_is_the_reference_dist2logit_layer():
    reference = lpips.BCERankingLoss()
    ours = RankingNet()
    assert ours.load_state_dict(reference.net.state_dict()) is not None
    gen = torch.Generator().manual_seed(2)
    d0, d1 = torch.rand(16, generator=gen), torch.rand(16, generator=gen)
    expected = reference.net(d0.view(-1, 1, 1, 1), d1.view(-1, 1, 1, 1)).view(-1)
    assert torch.allclose(ours(d0, d1), expected, rtol=0, atol=1e-7)


def test_learning_rate_schedule_matches_reference_update_learning_rate():
    reference = _reference_trainer(lr=1e-4)
    n_epochs, n_decay, rates = 5, 5, []
    for epoch in range(1, n_epochs + n_decay + 1):
        rates.append(reference.optimizer_net.param_groups[0]["lr"])
        if epoch > n_epochs:  # as the reference train.py does at the end of an epoch
            reference.update_learning_rate(n_decay)
    ours = [learning_rate(e, 1e-4, n_epochs, n_decay) for e in range(1, n_epochs + n_decay + 1)]
    assert ours == pytest.approx(rates, abs=1e-12)
    assert learning_rate(11, 1e-4, n_epochs, n_decay) == pytest.approx(0.0, abs=1e-12)

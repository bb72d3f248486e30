"""train-lin --mode tune|scratch against the reference ``lpips`` trainer: same start, same step.

The reference ``Trainer`` is built with ``pnet_rand=True, pnet_tune=True`` (trunk parameters in
its Adam, gradients through the trunk; no download). For ``tune`` the real ImageNet AlexNet trunk
is then loaded into it, for ``scratch`` its random trunk is kept; either way the trunk, initial
linear weights and ranking network are copied into a :class:`TrunkTrainer`, the reference's
dropout is set to 0 (masks cannot be matched), and one ``optimize_parameters()`` must equal one
``TrunkTrainer.step_images``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

lpips = pytest.importorskip("lpips", reason="the reference lpips package is not installed")
from lpips.trainer import Trainer  # noqa: E402

from iqa_bench.training import feature_metric  # noqa: E402
from iqa_bench.training.tune import TrunkOptions, TrunkTrainer  # noqa: E402

# Measured (float32, this machine, the seeds below; tune / scratch): loss 0 / 0; linear and
# ranking-network parameters after the step within 3.7e-9 / 1.5e-8; trunk gradients within
# 2.7e-6 / 2.5e-6 of each tensor's largest gradient; trunk parameters within 4.1e-7 / 1.2e-7, the
# largest at elements whose gradient (~4e-10) lies below Adam's eps (1e-8), where the first
# step lr * g / (|g| + eps) (~1e-4 elsewhere) turns float32 rounding of g into ~1e-7.
LOSS_TOL = 1e-6
PARAM_TOL = 1e-7
GRAD_RTOL = 2e-5
TRUNK_TOL = 1e-6


def _reference_trainer(trunk_state: dict[str, torch.Tensor] | None) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer()
    trainer.initialize(
        model="lpips",
        net="alex",
        use_gpu=False,
        is_train=True,
        pnet_rand=True,
        pnet_tune=True,
        lr=1e-4,
        beta1=0.5,
    )
    for module in trainer.net.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    if trunk_state is not None:  # reference slices keep torchvision's indices
        reference = trainer.net.net
        state = {k: trunk_state[f"features.{k.split('.', 1)[1]}"] for k in reference.state_dict()}
        reference.load_state_dict(state)
    return trainer


def _reference_trunk(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"features.{key.split('.', 1)[1]}": value.detach().clone()
        for key, value in trainer.net.net.state_dict().items()
    }


def _reference_lin(trainer: Trainer) -> torch.Tensor:
    return torch.cat([lin.model[-1].weight.detach().reshape(-1) for lin in trainer.net.lins])


def _ours_from(trainer: Trainer) -> TrunkTrainer:
    metric = feature_metric("alex", None, "0.1", pretrained=False)
    metric.trunk.load_trunk_state_dict(_reference_trunk(trainer))
    ours = TrunkTrainer(metric, TrunkOptions(lr=1e-4, dropout=0.0))
    with torch.no_grad():
        ours.head.weight.copy_(_reference_lin(trainer))
    ours.rank.load_state_dict(trainer.rankLoss.net.state_dict())
    return ours


def _batch(n: int = 8):
    gen = torch.Generator().manual_seed(1)
    images = {k: torch.rand(n, 3, 64, 64, generator=gen) for k in ("ref", "p0", "p1")}
    h = torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.4, 0.6])[:n]
    return images, h


def _max_differences(trunk_state: dict[str, torch.Tensor] | None) -> dict[str, float]:
    """One step of each trainer from the same start; the largest differences afterwards."""
    reference = _reference_trainer(trunk_state)
    ours = _ours_from(reference)
    start = _reference_trunk(reference)
    images, h = _batch()
    reference.set_input({k: v * 2 - 1 for k, v in images.items()} | {"judge": h.view(-1, 1)})
    reference.optimize_parameters()
    loss, credit = ours.step_images(images, h)

    trunk_after = ours.metric.trunk.trunk_state_dict()
    expected = _reference_trunk(reference)
    moved = max(float((expected[k] - start[k]).abs().max()) for k in expected)
    assert moved > 5e-5, "the reference step left the trunk unchanged: nothing was compared"
    rank = ours.rank.state_dict()
    ref_grads = {
        f"features.{n.split('.', 1)[1]}": p.grad for n, p in reference.net.net.named_parameters()
    }
    grad = max(
        float((p.grad - ref_grads[n]).abs().max() / ref_grads[n].abs().max())
        for n, p in ours.trunk_params
    )
    return {
        "grad": grad,
        "loss": abs(loss - float(reference.loss_total.detach())),
        "lin": float((ours.head.weight.detach() - _reference_lin(reference)).abs().max()),
        "rank": max(
            float((rank[k] - v).abs().max()) for k, v in reference.rankLoss.net.state_dict().items()
        ),
        "trunk": max(float((trunk_after[k] - v).abs().max()) for k, v in expected.items()),
        "credit": float(abs(credit - np.asarray(reference.acc_r).reshape(-1)).max()),
    }


def _assert_equal_steps(diff: dict[str, float]) -> None:
    assert diff["loss"] <= LOSS_TOL, diff
    assert max(diff["lin"], diff["rank"]) <= PARAM_TOL, diff
    assert diff["grad"] <= GRAD_RTOL and diff["trunk"] <= TRUNK_TOL, diff
    assert diff["credit"] <= 1e-6, diff


@pytest.mark.slow  # ~14 s on a 2-core CPU (lpips import, alex passes with gradients)
def test_one_tune_step_matches_the_reference_trainer_from_the_imagenet_trunk(alex_weights):
    state = torch.load(alex_weights, map_location="cpu", weights_only=True)
    _assert_equal_steps(_max_differences(state))


def test_one_scratch_step_matches_the_reference_trainer_from_a_random_trunk():
    _assert_equal_steps(_max_differences(None))


def test_trunk_rate_and_trained_layers_follow_the_options():
    metric = feature_metric("alex", None, "0.1", pretrained=False)
    options = TrunkOptions(lr=1e-3, trunk_lr=1e-4, train=("features.10.*",), dropout=0.0)
    trainer = TrunkTrainer(metric, options)
    before = {k: v.clone() for k, v in metric.trunk.trunk_state_dict().items()}
    trainer.set_lr(5e-4)  # a decay epoch: the trunk's rate keeps its ratio to the head's
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([5e-4, 5e-5])
    images, h = _batch()
    trainer.step_images(images, h)
    after = metric.trunk.trunk_state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["features.10.bias", "features.10.weight"]
    with pytest.raises(ValueError, match=r"'conv\*' matches no trunk parameter.*features\.0"):
        TrunkTrainer(metric, TrunkOptions(train=("conv*",)))

"""Training LPIPS metrics on 2AFC human judgments (``iqa-bench train-lin --mode lin|tune|scratch``).

Mode ``lin``: the trunk stays frozen; its features of every triplet are computed once (and cached
on disk), then per-channel non-negative weights and the paper's small ranking network are fitted
with a binary cross-entropy against the human fraction, as the reference ``lpips`` trainer does.
Modes ``tune`` (from ImageNet weights) and ``scratch`` (from random weights) train the trunk
together with them, running it on every batch (no feature cache). See ``docs/BACKBONES.md``.

Example:
    >>> from iqa_bench.training import TrainLinConfig, train_lin
    >>> cfg = TrainLinConfig(backbone="torchvision:resnet18", taps=("layer1", "layer2"),
    ...                      dataset="bapps", split="train", val_split="val")
    >>> result = train_lin(cfg, "runs/resnet18-lin.pth")  # doctest: +SKIP
    >>> scratch = TrainLinConfig(mode="scratch")  # random trunk, trained: no cache, dropout 0.5
    >>> (scratch.pretrained, scratch.features, scratch.dropout)
    (False, 'none', 0.5)
"""

from .config import MODES, TrainLinConfig
from .features import TripletFeatures, batch_means, feature_metric, pair_means, triplet_features
from .loop import TrainResult, train_lin
from .model import LinearHead, LinTrainer, RankingNet, bce_ranking_loss, learning_rate
from .outputs import TrainOutputs, metric_card_dict
from .tune import TrunkOptions, TrunkTrainer, select_trunk_parameters

__all__ = [
    "MODES",
    "LinTrainer",
    "LinearHead",
    "RankingNet",
    "TrainLinConfig",
    "TrainOutputs",
    "TrainResult",
    "TripletFeatures",
    "TrunkOptions",
    "TrunkTrainer",
    "batch_means",
    "bce_ranking_loss",
    "feature_metric",
    "learning_rate",
    "metric_card_dict",
    "pair_means",
    "select_trunk_parameters",
    "train_lin",
    "triplet_features",
]

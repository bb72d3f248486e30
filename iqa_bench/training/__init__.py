"""Training LPIPS linear layers on 2AFC human judgments (``iqa-bench train-lin``).

The trunk stays frozen; its features of every triplet are computed once (and cached on disk), then
per-channel non-negative weights and the paper's small ranking network are fitted with a binary
cross-entropy against the human fraction, as the reference ``lpips`` trainer does. See
``docs/BACKBONES.md``.

Example:
    >>> from iqa_bench.training import TrainLinConfig, train_lin
    >>> cfg = TrainLinConfig(backbone="torchvision:resnet18", taps=("layer1", "layer2"),
    ...                      dataset="bapps", split="train", val_split="val")
    >>> result = train_lin(cfg, "runs/resnet18-lin.pth")  # doctest: +SKIP
"""

from .config import TrainLinConfig
from .features import TripletFeatures, batch_means, feature_metric, pair_means, triplet_features
from .loop import TrainResult, train_lin
from .model import LinearHead, LinTrainer, RankingNet, bce_ranking_loss, learning_rate
from .outputs import TrainOutputs, metric_card_dict

__all__ = [
    "LinTrainer",
    "LinearHead",
    "RankingNet",
    "TrainLinConfig",
    "TrainOutputs",
    "TrainResult",
    "TripletFeatures",
    "batch_means",
    "bce_ranking_loss",
    "feature_metric",
    "learning_rate",
    "metric_card_dict",
    "pair_means",
    "train_lin",
    "triplet_features",
]
